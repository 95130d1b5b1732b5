// DreamMesh native addon: socket options Node cannot set, on sockets created here so the
// option is in place before the first packet (Node creates its TCP fd lazily inside
// connect(), too late for a mark on the SYN).
//
//   tcpSocket(family, mark, transparent) -> fd   unconnected non-blocking TCP socket; mark > 0
//                                                sets SO_MARK (the capture rules skip it),
//                                                transparent sets IP(V6)_TRANSPARENT (bind to a
//                                                non-local address: the client's, for TPROXY)
//   transparentListener(host, port) -> fd        bound (not listening) socket with
//                                                IP(V6)_TRANSPARENT and SO_REUSEADDR: accepts
//                                                connections TPROXY diverts to it
//   socketMark(fd) -> number                     SO_MARK of a socket (0 = none)
//   setSocketMark(fd, mark)                      SO_MARK on an existing socket (UDP: every
//                                                datagram sent afterwards carries it)
//   closeFd(fd)
//
// Errors are thrown with `code` set to the errno name (EPERM without CAP_NET_ADMIN).
#include "socket_options.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

namespace {

const char* ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    default: return "EUNKNOWN";
  }
}

Napi::Value Fail(Napi::Env env, const char* what, int e, int fd) {
  if (fd >= 0) close(fd);
  Napi::Error err = Napi::Error::New(env, std::string(what) + ": " + std::strerror(e));
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("errno", Napi::Number::New(env, e));
  err.ThrowAsJavaScriptException();
  return env.Undefined();
}

int SetTransparent(int fd, int family) {
  int one = 1;
  if (family == AF_INET6) {
    if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) != 0) return -1;
    // A dual-stack socket also gets IPv4 connections diverted to it.
    setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
    return 0;
  }
  return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

bool IntArg(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

Napi::Value TcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t family = 0, mark = 0;
  if (!IntArg(info, 0, &family) || (family != 4 && family != 6) || !IntArg(info, 1, &mark) || mark < 0 || mark > 0xffffffffLL) {
    Napi::TypeError::New(env, "tcpSocket(family 4|6, mark 0..2^32-1, transparent)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool transparent = info.Length() > 2 && info[2].ToBoolean().Value();
  int af = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(env, "socket", errno, -1);
  if (mark > 0) {
    uint32_t m = static_cast<uint32_t>(mark);
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) != 0) return Fail(env, "setsockopt(SO_MARK)", errno, fd);
  }
  if (transparent && SetTransparent(fd, af) != 0) return Fail(env, "setsockopt(IP_TRANSPARENT)", errno, fd);
  return Napi::Number::New(env, fd);
}

Napi::Value TransparentListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t port = -1;
  if (info.Length() < 2 || !info[0].IsString() || !IntArg(info, 1, &port) || port < 0 || port > 65535) {
    Napi::TypeError::New(env, "transparentListener(host, port)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string host = info[0].As<Napi::String>().Utf8Value();
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len;
  int af;
  sockaddr_in* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  sockaddr_in6* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    af = AF_INET;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*a4);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    af = AF_INET6;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*a6);
  } else {
    Napi::TypeError::New(env, "transparentListener: host must be an IP address").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(env, "socket", errno, -1);
  int one = 1, zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return Fail(env, "setsockopt(SO_REUSEADDR)", errno, fd);
  if (af == AF_INET6) setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (SetTransparent(fd, af) != 0) return Fail(env, "setsockopt(IP_TRANSPARENT)", errno, fd);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return Fail(env, "bind", errno, fd);
  return Napi::Number::New(env, fd);
}

Napi::Value SocketMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = -1;
  if (!IntArg(info, 0, &fd) || fd < 0) {
    Napi::TypeError::New(env, "socketMark(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t m = 0;
  socklen_t len = sizeof(m);
  if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_MARK, &m, &len) != 0) return Fail(env, "getsockopt(SO_MARK)", errno, -1);
  return Napi::Number::New(env, m);
}

Napi::Value SetSocketMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = -1;
  int64_t mark = -1;
  if (!IntArg(info, 0, &fd) || fd < 0 || !IntArg(info, 1, &mark) || mark < 0 || mark > 0xffffffffLL) {
    Napi::TypeError::New(env, "setSocketMark(fd, mark)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t m = static_cast<uint32_t>(mark);
  if (setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_MARK, &m, sizeof(m)) != 0) return Fail(env, "setsockopt(SO_MARK)", errno, -1);
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int64_t fd = -1;
  if (IntArg(info, 0, &fd) && fd >= 0) close(static_cast<int>(fd));
  return info.Env().Undefined();
}

}  // namespace

void RegisterSocketOptions(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpSocket", Napi::Function::New(env, TcpSocket, "tcpSocket"));
  exports.Set("transparentListener", Napi::Function::New(env, TransparentListener, "transparentListener"));
  exports.Set("socketMark", Napi::Function::New(env, SocketMark, "socketMark"));
  exports.Set("setSocketMark", Napi::Function::New(env, SetSocketMark, "setSocketMark"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}
