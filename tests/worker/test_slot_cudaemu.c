/* test_slot_cudaemu.c - a chunk through a GPU slot (rf_slot_render with env.gpu) whose device is
 * the emulated one of cudaemu.h, against the same chunk on a CPU slot, on any machine.
 *
 * The GPU slot's whole path runs: the pass thread's GPU stage (frame ring, conversion in and out,
 * the CUDA passes' host logic, context frames, the encoder's format), with the kernels' arithmetic
 * emulated on the CPU. Decoding is on the CPU here (FFmpeg finds no CUDA device), so the frames
 * enter the ring as host frames; NVDEC's surfaces only a real device gives (test_slot.c's
 * test_gpu_slot_matches_cpu_slot covers that branch on a GPU machine). The outputs must be within
 * one code of each other (docs/passes.md, "On the GPU"), and not identical: the device path rounds
 * where swscale dithers, so equal outputs would mean the GPU path did not run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "worker/cudaemu.h"

#include "gpu_pipe.c"

/* test_slot.c's fixtures; its own tests are unused here (test_slot runs them). */
#define T_SLOT_NO_MAIN
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "worker/test_slot.c"
#pragma GCC diagnostic pop

static void test_emulated_gpu_slot(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t cpu_env = t_slot_env(e), gpu_env = t_slot_env(e);
    gpu_env.gpu = true;
    gpu_env.gpu_device = 0;
    gpu_env.decode = RF_DECODE_AUTO;
    rf_slot_result_t res[2];
    for (int k = 0; k < 2; k++) {
        t_msg_t t;
        t_assign(e, &t, 100, 120, 4, "ffv1", "deflicker");
        rf_assignment_t *a = t_from_msg(&t);
        atomic_int cancel = 0;
        _Atomic uint64_t done = 0;
        if (rf_slot_render(a, k ? &gpu_env : &cpu_env, &cancel, &done, &res[k]) != 0)
            fail_msg("%s slot: %s: %s", k ? "GPU" : "CPU", res[k].error_class, res[k].message);
        assert_int_equal(res[k].frames, 20);
        assert_int_equal(atomic_load(&done), 20);
        rf_assignment_destroy(&a);
    }
    const int diff = t_result_max_diff(e, &res[0], &res[1]);
    printf("emulated GPU slot vs CPU slot: max %d codes, digests %s\n", diff,
           memcmp(res[0].digest, res[1].digest, RF_SHA256_LEN) ? "differ" : "equal");
    assert_true(diff <= 1);
    assert_memory_not_equal(res[0].digest, res[1].digest, RF_SHA256_LEN);
    for (int k = 0; k < 2; k++)
        rf_slot_result_release(&res[k]);
    assert_int_equal(s_live, 0); /* the stage gave back every device and pinned buffer */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emulated_gpu_slot),
    };
    return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
