/* gpu.cu - the CUDA side of gpu.h: device probe and kernel self-test. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "gpu.h"
}
#include "gpu_kern.h"

#define RF_SELFTEST_N 4096

/* y[i] = a*x[i] + i: cheap, and wrong if the kernel did not run or ran the wrong code. */
__global__ void rf_selftest_kernel(const float *x, float *y, float a, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + (float)i;
}

static bool s_selftest(int dev)
{
    float host_x[RF_SELFTEST_N], host_y[RF_SELFTEST_N];
    float *x = NULL, *y = NULL;
    bool ok = false;
    for (int i = 0; i < RF_SELFTEST_N; i++)
        host_x[i] = (float)(i % 97) * 0.5f;
    if (cudaSetDevice(dev) != cudaSuccess)
        return false;
    if (cudaMalloc(&x, sizeof(host_x)) != cudaSuccess || cudaMalloc(&y, sizeof(host_y)) != cudaSuccess)
        goto out;
    if (cudaMemcpy(x, host_x, sizeof(host_x), cudaMemcpyHostToDevice) != cudaSuccess)
        goto out;
    rf_selftest_kernel<<<(RF_SELFTEST_N + 255) / 256, 256>>>(x, y, 3.0f, RF_SELFTEST_N);
    if (cudaGetLastError() != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess)
        goto out;
    if (cudaMemcpy(host_y, y, sizeof(host_y), cudaMemcpyDeviceToHost) != cudaSuccess)
        goto out;
    ok = true;
    for (int i = 0; i < RF_SELFTEST_N && ok; i++)
        ok = host_y[i] == 3.0f * host_x[i] + (float)i;
out:
    cudaFree(x);
    cudaFree(y);
    cudaGetLastError(); /* clear a sticky launch error so the next device starts clean */
    return ok;
}

extern "C" void rf_gpu_probe(rf_gpu_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->built_with_cuda = true;
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaDriverGetVersion(&info->driver_version);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(info->note, sizeof(info->note), "%s", cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    if (count > RF_GPU_MAX_DEVICES)
        count = RF_GPU_MAX_DEVICES;
    for (int i = 0; i < count; i++) {
        rf_gk_blocking_sync(i); /* before the self-test activates the context: NVDEC needs it */
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
            continue;
        rf_gpu_device_t *d = &info->devices[info->ndevices];
        d->index = i;
        snprintf(d->name, sizeof(d->name), "%s", prop.name);
        d->cc_major = prop.major;
        d->cc_minor = prop.minor;
        d->total_bytes = prop.totalGlobalMem;
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            d->free_bytes = free_b;
        d->kernel_ok = s_selftest(i);
        info->ndevices++;
    }
    if (info->ndevices == 0)
        snprintf(info->note, sizeof(info->note), "no CUDA device");
}
