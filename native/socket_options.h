// Socket-option functions of the DreamMesh addon (socket_options.cc).
#pragma once
#include <napi.h>

void RegisterSocketOptions(Napi::Env env, Napi::Object exports);
