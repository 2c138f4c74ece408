/* fuzz_onnx.c - libFuzzer target for the ONNX loader (worker/nn/nn.h): a model file is user input
 * (a pass parameter names it), so rf_nn_model_load_buffer must refuse anything it does not support
 * with a message and never crash. Built only when the rf_nn library exists. */
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_nn_model_t *m = NULL;
    rf_err_t err = {0};
    if (rf_nn_model_load_buffer(data, size, &m, &err) == 0) {
        if (!m)
            abort();
        rf_nn_model_free(m);
    } else if (m || !err.msg[0]) {
        abort(); /* a refusal leaves nothing behind and says why */
    }
    return 0;
}
