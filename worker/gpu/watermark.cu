/* watermark.cu - the CUDA embed of the invisible watermark (gpu.h, "watermark"): the same
 * multiply-add as media/watermark.c's rf_media_wm_embed_float, one thread per sample, for planes
 * that already live on the device. The chip of pixel (x, y) is chips[((y * rows / height) % tile) *
 * tile + (x * rows / height) % tile] in integer arithmetic, exactly as on the CPU, and
 * amplitude * (+-1) is exact, so both give bit-identical results (fused multiply-add or not);
 * tests/worker/test_watermark_gpu.c checks it. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

extern "C" {
#include "gpu.h"
}

__global__ void rf_wm_embed_kernel(float *plane, int width, int height, int stride, const int8_t *chips,
                                   int tile, int rows, float amplitude)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height)
        return;
    int cx = (int)(((long long)x * rows / height) % tile);
    int cy = (int)(((long long)y * rows / height) % tile);
    plane[(size_t)y * stride + x] += amplitude * (float)chips[cy * tile + cx];
}

extern "C" int rf_gpu_wm_embed_planes(float *const *dev_planes, int nplanes, int width, int height,
                                      int stride, const int8_t *dev_chips, int tile, int rows,
                                      float amplitude, void *stream)
{
    dim3 block(32, 8);
    dim3 grid((unsigned)(width + 31) / 32, (unsigned)(height + 7) / 8);
    for (int p = 0; p < nplanes; p++)
        rf_wm_embed_kernel<<<grid, block, 0, (cudaStream_t)stream>>>(dev_planes[p], width, height, stride,
                                                                    dev_chips, tile, rows, amplitude);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

extern "C" int rf_gpu_wm_embed_host(float *const *planes, int nplanes, int width, int height,
                                    const int8_t *chips, int tile, int rows, float amplitude, char *why,
                                    size_t size)
{
    size_t bytes = (size_t)width * (size_t)height * sizeof(float);
    float *dev[3] = {NULL, NULL, NULL};
    int8_t *dev_chips = NULL;
    cudaError_t e = cudaSuccess;
    int rc = -1;

    if (nplanes < 1 || nplanes > 3) {
        snprintf(why, size, "watermark: 1..3 planes, got %d", nplanes);
        return -1;
    }
    if ((e = cudaMalloc(&dev_chips, (size_t)tile * tile)) != cudaSuccess ||
        (e = cudaMemcpy(dev_chips, chips, (size_t)tile * tile, cudaMemcpyHostToDevice)) != cudaSuccess)
        goto out;
    for (int p = 0; p < nplanes; p++)
        if ((e = cudaMalloc(&dev[p], bytes)) != cudaSuccess ||
            (e = cudaMemcpy(dev[p], planes[p], bytes, cudaMemcpyHostToDevice)) != cudaSuccess)
            goto out;
    if (rf_gpu_wm_embed_planes(dev, nplanes, width, height, width, dev_chips, tile, rows, amplitude, NULL) != 0) {
        e = cudaGetLastError();
        goto out;
    }
    if ((e = cudaDeviceSynchronize()) != cudaSuccess)
        goto out;
    for (int p = 0; p < nplanes; p++)
        if ((e = cudaMemcpy(planes[p], dev[p], bytes, cudaMemcpyDeviceToHost)) != cudaSuccess)
            goto out;
    rc = 0;
out:
    if (rc)
        snprintf(why, size, "watermark: CUDA: %s", cudaGetErrorString(e));
    for (int p = 0; p < 3; p++)
        cudaFree(dev[p]);
    cudaFree(dev_chips);
    return rc;
}
