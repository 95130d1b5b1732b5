// DreamMesh native addon: the original destination of a redirected TCP socket (and, from
// socket_options.cc, the socket options transparent mode needs: SO_MARK, IP_TRANSPARENT).
//
//   originalDst(fd) -> { host, port, family } | null
//
// iptables/nftables REDIRECT rewrites the destination of a connection to the sidecar's
// listener; conntrack remembers the address the application asked for, and the kernel hands
// it back through getsockopt(SO_ORIGINAL_DST) (IPv4) or getsockopt(IP6T_SO_ORIGINAL_DST)
// (IPv6). null means "no NAT record for this socket" (not redirected, or conntrack absent).
// A socket that was not redirected but has a conntrack entry reports its own local address;
// the caller compares with the listener address (Envoy's loop guard).
#include <napi.h>

#include "socket_options.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace {

Napi::Value Result(Napi::Env env, const char* host, unsigned port, int family) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("host", Napi::String::New(env, host));
  o.Set("port", Napi::Number::New(env, port));
  o.Set("family", Napi::Number::New(env, family));
  return o;
}

Napi::Value Ipv4(Napi::Env env, int fd, bool* tried) {
  sockaddr_in a;
  socklen_t len = sizeof(a);
  std::memset(&a, 0, sizeof(a));
  *tried = true;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &a, &len) != 0) return env.Null();
  char buf[INET_ADDRSTRLEN];
  if (inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf)) == nullptr) return env.Null();
  return Result(env, buf, ntohs(a.sin_port), 4);
}

Napi::Value Ipv6(Napi::Env env, int fd) {
  sockaddr_in6 a;
  socklen_t len = sizeof(a);
  std::memset(&a, 0, sizeof(a));
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &a, &len) != 0) return env.Null();
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf)) == nullptr) return env.Null();
  return Result(env, buf, ntohs(a.sin6_port), 6);
}

Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "originalDst(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) return env.Null();
  sockaddr_storage local;
  socklen_t len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return env.Null();
  bool tried = false;
  if (local.ss_family == AF_INET) return Ipv4(env, fd, &tried);
  if (local.ss_family == AF_INET6) {
    const sockaddr_in6* l6 = reinterpret_cast<const sockaddr_in6*>(&local);
    // An IPv4 client on a dual-stack listener: the NAT record is an IPv4 one.
    if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) return Ipv4(env, fd, &tried);
    return Ipv6(env, fd);
  }
  return env.Null();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  RegisterSocketOptions(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(original_dst, Init)
