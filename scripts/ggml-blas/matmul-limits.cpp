// Compiled into libggml-blas.so next to ggml's ggml-blas.cpp (scripts/build-ggml-blas.sh).
//
// ggml's BLAS backend takes every MUL_MAT whose dimensions are all ≥ 32 and every F32 OUT_PROD. Two
// kinds of them are better left to ggml-cpu, and ggml_backend_sched cannot be told so per node:
// its pass 3 moves any node to the highest-priority backend that supports it and shares its
// buffer type, user assignments included. So the trainer's BLAS backend answers supports_op
// through this wrapper, which declines:
//
// - small products: each switch between the BLAS and CPU backends ends a split, and every CPU
//   split starts and joins ggml's worker threads; a small model's matmuls cost less than that
//   (measured 2026-11-30, d_model 64, 2 threads on a loaded machine: 4.5× the wall time);
// - matmuls by a large non-F32 weight: the BLAS backend converts the weight to F32 on every call, into
//   a work buffer as large as the largest weight so converted (a 151936 × 896 Q8_0 head: 545 MB,
//   converted again for every chunk of the trainer's head); ggml-cpu has kernels for its type.
#include "ggml.h"
#include "ggml-backend-impl.h"
#include "ggml-blas.h"

#include <cstddef>
#include <mutex>

namespace {

ggml_backend_device limited_device;
bool (*blas_supports_op)(ggml_backend_dev_t, const ggml_tensor *) = nullptr;
// One set of limits per process: the trainer builds one graph at a time.
size_t max_converted_bytes = SIZE_MAX;
int64_t min_macs = 0;

bool limited_supports_op(ggml_backend_dev_t dev, const ggml_tensor * op) {
    if (op->op == GGML_OP_MUL_MAT || op->op == GGML_OP_OUT_PROD) {
        // Multiply-adds: every output element sums over src0's rows (ne[0] for MUL_MAT, ne[1] for OUT_PROD).
        const int64_t k = op->op == GGML_OP_MUL_MAT ? op->src[0]->ne[0] : op->src[0]->ne[1];
        if (ggml_nelements(op) * k < min_macs) {
            return false;
        }
    }
    if (op->op == GGML_OP_MUL_MAT && op->src[0]->type != GGML_TYPE_F32 &&
        (size_t) ggml_nelements(op->src[0]) * sizeof(float) > max_converted_bytes) {
        return false;
    }
    return blas_supports_op(dev, op);
}

}  // namespace

// A BLAS backend that declines matmuls of fewer than `min_multiply_adds` multiply-adds, and those
// whose weight would be converted to more than `max_bytes` of F32 (0 and SIZE_MAX: none declined).
// NULL when ggml_backend_blas_init fails.
extern "C" __attribute__((visibility("default"))) ggml_backend_t nodeai_ggml_backend_blas_init_with_limits(size_t max_bytes, int64_t min_multiply_adds) {
    ggml_backend_t backend = ggml_backend_blas_init();
    if (backend == nullptr) {
        return nullptr;
    }
    static std::once_flag once;
    std::call_once(once, [&] {
        limited_device = *backend->device;
        blas_supports_op = limited_device.iface.supports_op;
        limited_device.iface.supports_op = limited_supports_op;
    });
    max_converted_bytes = max_bytes;
    min_macs = min_multiply_adds;
    backend->device = &limited_device;
    return backend;
}
