// The GPU step of the capacity measurement: FP32 TFLOPS of a square SGEMM, through the CUDA
// driver (libcuda.so.1) and cuBLAS found with dlopen at run time, so dfrp neither links nor
// needs them. Any missing piece or failed call gives no figure and a reason naming it.
#include <dlfcn.h>

#include <chrono>
#include <string>

#include "dfrp/economy/measure.h"

namespace dfrp::economy {

namespace {

// The few driver and cuBLAS entry points used, as their C ABI declares them (CUresult and
// cublasStatus_t are ints, 0 = success; CUdeviceptr is an unsigned 64-bit integer).
using CuInit = int (*)(unsigned);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuPrimaryCtxRetain = int (*)(void**, int);
using CuPrimaryCtxRelease = int (*)(int);
using CuCtxSetCurrent = int (*)(void*);
using CuCtxSynchronize = int (*)();
using CuMemAlloc = int (*)(unsigned long long*, size_t);
using CuMemFree = int (*)(unsigned long long);
using CuMemsetD32 = int (*)(unsigned long long, unsigned, size_t);
using CublasCreate = int (*)(void**);
using CublasDestroy = int (*)(void*);
using CublasSgemm = int (*)(void*, int, int, int, int, int, const float*, const float*, int,
                            const float*, int, const float*, float*, int);

constexpr int kN = 8192;  // 3 matrices of 256 MiB; 1.1 TFLOP per product

struct Api {
  CuInit init;
  CuDeviceGetCount device_count;
  CuDeviceGet device_get;
  CuPrimaryCtxRetain ctx_retain;
  CuPrimaryCtxRelease ctx_release;
  CuCtxSetCurrent ctx_set;
  CuCtxSynchronize sync;
  CuMemAlloc alloc;
  CuMemFree free;
  CuMemsetD32 memset;
  CublasCreate blas_create;
  CublasDestroy blas_destroy;
  CublasSgemm sgemm;
};

template <typename F>
bool Load(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  return *out != nullptr;
}

void* OpenCublas() {
  for (const char* name :
       {"libcublas.so.12", "libcublas.so.13", "libcublas.so.11", "libcublas.so"}) {
    if (void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return lib;
  }
  return nullptr;
}

// Times SGEMMs once the API is loaded; returns TFLOPS or sets *reason.
std::optional<double> TimeSgemm(const Api& api, double seconds, std::string* reason) {
  auto fail = [&](const std::string& what, int code) {
    *reason = "GPU found but " + what + " failed (error " + std::to_string(code) + ")";
    return std::nullopt;
  };
  int rc = api.init(0);
  if (rc != 0) return fail("cuInit", rc);
  int count = 0;
  if ((rc = api.device_count(&count)) != 0 || count == 0) {
    *reason = "NVIDIA driver present but no GPU device is visible";
    return std::nullopt;
  }
  int dev = 0;
  void* ctx = nullptr;
  if ((rc = api.device_get(&dev, 0)) != 0) return fail("cuDeviceGet", rc);
  if ((rc = api.ctx_retain(&ctx, dev)) != 0) return fail("cuDevicePrimaryCtxRetain", rc);
  std::optional<double> tflops;
  unsigned long long m[3] = {0, 0, 0};
  void* blas = nullptr;
  const size_t elems = static_cast<size_t>(kN) * kN;
  do {
    if ((rc = api.ctx_set(ctx)) != 0) {
      fail("cuCtxSetCurrent", rc);
      break;
    }
    bool ok = true;
    for (auto& p : m) {
      if ((rc = api.alloc(&p, elems * sizeof(float))) != 0 ||
          (rc = api.memset(p, 0x3f800000u /* 1.0f */, elems)) != 0) {
        fail("allocating 3 x 256 MiB of GPU memory", rc);
        ok = false;
        break;
      }
    }
    if (!ok) break;
    if ((rc = api.blas_create(&blas)) != 0) {
      fail("cublasCreate", rc);
      break;
    }
    const float alpha = 1.0f, beta = 0.0f;
    auto gemm = [&] {
      return api.sgemm(blas, 0, 0, kN, kN, kN, &alpha, reinterpret_cast<const float*>(m[0]), kN,
                       reinterpret_cast<const float*>(m[1]), kN, &beta,
                       reinterpret_cast<float*>(m[2]), kN);
    };
    if ((rc = gemm()) != 0 || (rc = api.sync()) != 0) {
      fail("the warm-up SGEMM", rc);
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    int runs = 0;
    do {
      if ((rc = gemm()) != 0 || (rc = api.sync()) != 0) break;
      ++runs;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    if (rc != 0) {
      fail("cublasSgemm", rc);
      break;
    }
    tflops = 2.0 * kN * kN * static_cast<double>(kN) * runs / elapsed / 1e12;
  } while (false);
  if (blas != nullptr) api.blas_destroy(blas);
  for (auto p : m) {
    if (p != 0) api.free(p);
  }
  api.ctx_release(dev);
  return tflops;
}

}  // namespace

GpuMeasurement MeasureGpuFp32(double seconds) {
  GpuMeasurement out;
  // The libraries stay loaded: unloading the CUDA driver in a running process is unsafe.
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    out.reason = "no NVIDIA driver: libcuda.so.1 not found";
    return out;
  }
  Api api{};
  const bool driver_ok =
      Load(cuda, "cuInit", &api.init) && Load(cuda, "cuDeviceGetCount", &api.device_count) &&
      Load(cuda, "cuDeviceGet", &api.device_get) &&
      Load(cuda, "cuDevicePrimaryCtxRetain", &api.ctx_retain) &&
      Load(cuda, "cuDevicePrimaryCtxRelease_v2", &api.ctx_release) &&
      Load(cuda, "cuCtxSetCurrent", &api.ctx_set) && Load(cuda, "cuCtxSynchronize", &api.sync) &&
      Load(cuda, "cuMemAlloc_v2", &api.alloc) && Load(cuda, "cuMemFree_v2", &api.free) &&
      Load(cuda, "cuMemsetD32_v2", &api.memset);
  if (!driver_ok) {
    out.reason = "NVIDIA driver libcuda.so.1 lacks a needed entry point (too old?)";
    return out;
  }
  void* cublas = OpenCublas();
  if (cublas == nullptr) {
    out.reason =
        "NVIDIA driver found but no cuBLAS (libcuda.so.1 present, libcublas.so.* not "
        "found): install the CUDA toolkit's cuBLAS to measure FP32";
    return out;
  }
  if (!Load(cublas, "cublasCreate_v2", &api.blas_create) ||
      !Load(cublas, "cublasDestroy_v2", &api.blas_destroy) ||
      !Load(cublas, "cublasSgemm_v2", &api.sgemm)) {
    out.reason = "cuBLAS found but it lacks cublasSgemm_v2";
    return out;
  }
  out.tflops = TimeSgemm(api, seconds, &out.reason);
  return out;
}

}  // namespace dfrp::economy
