/* nn.h - reelfarm's own ONNX executor (DESIGN §6, issue "Generation passes").
 *
 * Three steps, each with a clear owner of memory:
 *   1. rf_nn_model_load*: parse an ONNX file (proto/onnx-subset.proto, ONNX's own field numbers)
 *      into a graph; refuses what it does not support (external data, sparse tensors, unknown ops,
 *      unsupported opsets, cycles, huge or negative dims, wrong types) with a message naming the
 *      node ("node 12 'Conv_7' (Conv): attribute 'group' = 0 must be >= 1").
 *   2. rf_nn_plan_create: compile the graph for fixed input shapes and one device: static shapes,
 *      constant folding, BatchNorm folded into Conv, fused epilogues, one arena sized from tensor
 *      lifetimes. A plan is reused for every frame; it is not thread-safe (one plan per slot).
 *   3. rf_nn_plan_run: bind inputs, run, read outputs.
 *
 * Tensors at this boundary are dense, row-major (NCHW for images), in host memory.
 */
#ifndef RF_NN_H
#define RF_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_NN_MAX_DIMS 8
#define RF_NN_NAME_MAX 256

/* ONNX TensorProto.DataType values the executor knows. */
typedef enum rf_nn_dtype {
    RF_NN_FLOAT = 1,
    RF_NN_UINT8 = 2,
    RF_NN_INT8 = 3,
    RF_NN_INT32 = 6,
    RF_NN_INT64 = 7,
    RF_NN_BOOL = 9,
    RF_NN_FLOAT16 = 10,
    RF_NN_DOUBLE = 11,
} rf_nn_dtype_t;

typedef enum rf_nn_device {
    RF_NN_CPU = 0, /* the reference: NCHW fp32, exact ONNX semantics */
    RF_NN_GPU = 1, /* CUDA: cuDNN through dlopen when present, own kernels otherwise */
} rf_nn_device_t;

/* A tensor owned by whoever filled it: rf_nn_tensor_release frees data (malloc'd). */
typedef struct rf_nn_tensor {
    char name[RF_NN_NAME_MAX];
    rf_nn_dtype_t dtype;
    int ndim;
    int64_t dims[RF_NN_MAX_DIMS];
    void *data;   /* element count = product of dims (1 for a scalar) */
    size_t bytes; /* bytes of data */
} rf_nn_tensor_t;

/* Number of elements (product of dims). */
int64_t rf_nn_tensor_count(const rf_nn_tensor_t *t);
void rf_nn_tensor_release(rf_nn_tensor_t *t);

/* Reads / writes an ONNX TensorProto file (the .pb files of ONNX's node tests, and what
 * `reelfarm model run` reads and writes). */
int rf_nn_tensor_read(const char *path, rf_nn_tensor_t *out, rf_err_t *err);
int rf_nn_tensor_write(const char *path, const rf_nn_tensor_t *t, rf_err_t *err);

typedef struct rf_nn_model rf_nn_model_t;

int rf_nn_model_load_file(const char *path, rf_nn_model_t **out, rf_err_t *err);
int rf_nn_model_load_buffer(const void *buf, size_t len, rf_nn_model_t **out, rf_err_t *err);
void rf_nn_model_free(rf_nn_model_t *m);

/* The graph's real inputs (initializers excluded) and outputs, in graph order. A dim the model
 * leaves symbolic or unknown reads as -1. */
int rf_nn_model_inputs(const rf_nn_model_t *m);
int rf_nn_model_outputs(const rf_nn_model_t *m);
const rf_nn_tensor_t *rf_nn_model_input(const rf_nn_model_t *m, int i);  /* name, dtype, dims; no data */
const rf_nn_tensor_t *rf_nn_model_output(const rf_nn_model_t *m, int i); /* name, dtype, dims; no data */
/* SHA-256 of the file's bytes, lowercase hex (for provenance and the workers' model cache). */
const char *rf_nn_model_sha256(const rf_nn_model_t *m);

typedef struct rf_nn_plan rf_nn_plan_t;

typedef struct rf_nn_plan_options {
    rf_nn_device_t device;
    bool fp16;             /* GPU only: run in fp16 (fp32 accumulate) */
    int gpu_index;         /* GPU only */
    const char *cache_dir; /* GPU only: where the chosen convolution algorithms are cached; NULL = none */
} rf_nn_plan_options_t;

/* Compiles m for the given input shapes (one per model input, in order; names and dtypes must
 * match; every dim concrete). RF_EUNAVAIL when the device is not there.
 * An input whose values fix shapes (a graph input used as Pad's pads, Resize's roi/scales/sizes,
 * Reshape's shape, Slice's starts..steps, ConstantOfShape's shape, Unsqueeze/Squeeze-13's axes)
 * must come with its values in data; rf_nn_plan_run then refuses other values for it. The data
 * of every other input is ignored here (it may be NULL). */
int rf_nn_plan_create(const rf_nn_model_t *m, const rf_nn_tensor_t *input_shapes, int n_inputs,
                      const rf_nn_plan_options_t *opt, rf_nn_plan_t **out, rf_err_t *err);
void rf_nn_plan_free(rf_nn_plan_t *p);

/* Output shapes, known once the plan exists. */
const rf_nn_tensor_t *rf_nn_plan_output(const rf_nn_plan_t *p, int i);

/* What the compile step made of the model: the steps run per frame (after constant folding and
 * fusion) and the arena's size in bytes (every intermediate value and scratch buffer; on the
 * device for GPU plans, at the values' stored sizes). For tests and benchmarks; either pointer
 * may be NULL. */
void rf_nn_plan_stats(const rf_nn_plan_t *p, int *steps, size_t *arena_bytes);

/* Runs the plan. inputs[i] has the shapes the plan was created for; outputs[i] are filled
 * (allocated here when data is NULL, else written in place when bytes suffice). */
int rf_nn_plan_run(rf_nn_plan_t *p, const rf_nn_tensor_t *inputs, int n_inputs,
                   rf_nn_tensor_t *outputs, int n_outputs, rf_err_t *err);

/* A host buffer the plan owns for input i (output false) or output i, sized for that tensor, or
 * NULL: page-locked (pinned) memory on GPU plans, which the device copies to and from at full bus
 * speed and without the driver's staging copy; NULL on CPU plans, or when the device cannot pin
 * memory. Write the input there and pass it as inputs[i].data (with bytes), or pass the output's
 * buffer as outputs[i].data, and rf_nn_plan_run copies straight from and to it; any other buffer
 * works as before. *bytes (may be NULL) receives its size. Valid until rf_nn_plan_free. */
void *rf_nn_plan_host_buffer(rf_nn_plan_t *p, bool output, int i, size_t *bytes);

/* Threads the CPU backend's matrix products (OpenBLAS) may use, process-wide: a worker sets
 * cores / slots, so slots running plans at once do not oversubscribe the cores (OpenBLAS threads
 * spin while they wait). n < 1 means 1. OPENBLAS_NUM_THREADS in the environment wins. */
void rf_nn_set_cpu_threads(int n);

#endif
