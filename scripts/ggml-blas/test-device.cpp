// A stand-in accelerator for the trainer's tests on machines without a GPU: a ggml backend whose
// buffers say they are not host memory (as CUDA's do), so ggml-backend's scheduler copies tensors
// between it and the CPU backend exactly as it would for a GPU, and ops it is told to refuse fall
// back to the CPU per op (or, for a tensor that lives in its memory, cannot run at all). It computes
// by handing the graph to a CPU backend, since its memory is host memory underneath.
//
// Built by scripts/build-ggml-blas.sh into build/ggml-blas/libggml-test-device.so; never used outside
// tests (src/trainer/ggml/test-device.ts loads it).
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "ggml-backend-impl.h"
#include "ggml-impl.h"

namespace {

constexpr size_t kAlignment = 64;

// How many nodes of each op any stand-in device computed, by ggml_op_name and by name and first
// source's type ("CPY:q4_K"), for tests to check that what it refuses ran elsewhere.
std::map<std::string, long> ops_run;

struct TestDevice {
    ggml_backend_t cpu = nullptr;
    // Frees `cpu` as whoever created it does (the trainer's bindings also free its threadpool).
    void (*free_cpu)(ggml_backend_t) = nullptr;
    ggml_backend_buffer_type_t buft = nullptr;
    // What it claims it cannot run: an op ("SOFT_MAX"), or an op on a first source of one type
    // ("CPY:q4_K", as CUDA lacks a K-quant's dequantizing copy), by ggml_op_name/ggml_type_name.
    std::set<std::string> refused;
};

const char * buft_name(ggml_backend_buffer_type_t) { return "TestDevice"; }

void buffer_free(ggml_backend_buffer_t buffer) { std::free(buffer->context); }
void * buffer_base(ggml_backend_buffer_t buffer) { return buffer->context; }

void buffer_memset(ggml_backend_buffer_t, ggml_tensor * tensor, uint8_t value, size_t offset, size_t size) {
    std::memset(static_cast<char *>(tensor->data) + offset, value, size);
}
void buffer_set(ggml_backend_buffer_t, ggml_tensor * tensor, const void * data, size_t offset, size_t size) {
    std::memcpy(static_cast<char *>(tensor->data) + offset, data, size);
}
void buffer_get(ggml_backend_buffer_t, const ggml_tensor * tensor, void * data, size_t offset, size_t size) {
    std::memcpy(data, static_cast<const char *>(tensor->data) + offset, size);
}
// Copies between buffers go through get/set, as they do between a GPU and the host.
bool buffer_cpy(ggml_backend_buffer_t, const ggml_tensor *, ggml_tensor *) { return false; }
void buffer_clear(ggml_backend_buffer_t buffer, uint8_t value) { std::memset(buffer->context, value, buffer->size); }

const ggml_backend_buffer_i kBufferI = {
    /* .free_buffer   = */ buffer_free,
    /* .get_base      = */ buffer_base,
    /* .init_tensor   = */ nullptr,
    /* .memset_tensor = */ buffer_memset,
    /* .set_tensor    = */ buffer_set,
    /* .get_tensor    = */ buffer_get,
    /* .set_tensor_2d = */ nullptr,
    /* .get_tensor_2d = */ nullptr,
    /* .cpy_tensor    = */ buffer_cpy,
    /* .clear         = */ buffer_clear,
    /* .reset         = */ nullptr,
};

ggml_backend_buffer_t buft_alloc(ggml_backend_buffer_type_t buft, size_t size) {
    const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
    void * data = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (data == nullptr) return nullptr;
    return ggml_backend_buffer_init(buft, kBufferI, data, size);
}
size_t buft_alignment(ggml_backend_buffer_type_t) { return kAlignment; }
bool buft_is_host(ggml_backend_buffer_type_t) { return false; }

const char * dev_name(ggml_backend_dev_t) { return "TestDevice"; }
const char * dev_description(ggml_backend_dev_t) { return "a stand-in accelerator for tests (host memory behind a device buffer type)"; }
void dev_memory(ggml_backend_dev_t, size_t * free, size_t * total) { *free = *total = size_t(1) << 34; }
enum ggml_backend_dev_type dev_type(ggml_backend_dev_t) { return GGML_BACKEND_DEVICE_TYPE_GPU; }
ggml_backend_buffer_type_t dev_buffer_type(ggml_backend_dev_t dev) { return static_cast<TestDevice *>(dev->context)->buft; }
bool dev_supports_op(ggml_backend_dev_t dev, const ggml_tensor * op) {
    const auto & refused = static_cast<TestDevice *>(dev->context)->refused;
    const std::string name = ggml_op_name(op->op);
    if (refused.count(name) != 0) return false;
    return op->src[0] == nullptr || refused.count(name + ":" + ggml_type_name(op->src[0]->type)) == 0;
}
bool dev_supports_buft(ggml_backend_dev_t dev, ggml_backend_buffer_type_t buft) { return buft == dev_buffer_type(dev); }

const ggml_backend_device_i kDeviceI = {
    /* .get_name             = */ dev_name,
    /* .get_description      = */ dev_description,
    /* .get_memory           = */ dev_memory,
    /* .get_type             = */ dev_type,
    /* .get_props            = */ nullptr,
    /* .init_backend         = */ nullptr,
    /* .get_buffer_type      = */ dev_buffer_type,
    /* .get_host_buffer_type = */ nullptr,
    /* .buffer_from_host_ptr = */ nullptr,
    /* .supports_op          = */ dev_supports_op,
    /* .supports_buft        = */ dev_supports_buft,
    /* .offload_op           = */ nullptr,
    /* .event_new            = */ nullptr,
    /* .event_free           = */ nullptr,
    /* .event_synchronize    = */ nullptr,
};

const char * backend_name(ggml_backend_t) { return "TestDevice"; }
void backend_free(ggml_backend_t backend) {
    auto * state = static_cast<TestDevice *>(backend->device->context);
    state->free_cpu(state->cpu);
    delete state->buft;
    delete state;
    delete backend->device;
    delete backend;
}
ggml_status backend_compute(ggml_backend_t backend, ggml_cgraph * graph) {
    for (int i = 0; i < ggml_graph_n_nodes(graph); i++) {
        const ggml_tensor * node = ggml_graph_node(graph, i);
        const std::string name = ggml_op_name(node->op);
        ops_run[name]++;
        if (node->src[0] != nullptr) ops_run[name + ":" + ggml_type_name(node->src[0]->type)]++;
    }
    // Every op the scheduler gave this backend reads and writes this backend's (host) memory.
    return ggml_backend_graph_compute(static_cast<TestDevice *>(backend->device->context)->cpu, graph);
}

const ggml_backend_i kBackendI = {
    /* .get_name            = */ backend_name,
    /* .free                = */ backend_free,
    /* .set_tensor_async    = */ nullptr,
    /* .get_tensor_async    = */ nullptr,
    /* .set_tensor_2d_async = */ nullptr,
    /* .get_tensor_2d_async = */ nullptr,
    /* .cpy_tensor_async    = */ nullptr,
    /* .synchronize         = */ nullptr,
    /* .graph_plan_create   = */ nullptr,
    /* .graph_plan_free     = */ nullptr,
    /* .graph_plan_update   = */ nullptr,
    /* .graph_plan_compute  = */ nullptr,
    /* .graph_compute       = */ backend_compute,
    /* .event_record        = */ nullptr,
    /* .event_wait          = */ nullptr,
    /* .graph_optimize      = */ nullptr,
};

ggml_guid_t guid() {
    static ggml_guid value = {0x6e, 0x6f, 0x64, 0x65, 0x61, 0x69, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x64, 0x65, 0x76, 0x00};
    return &value;
}

}  // namespace

extern "C" {

// A new stand-in device backend computing on `cpu`, which it frees with itself by `free_cpu`.
// `refused_ops`: comma-separated ops it says it cannot run ("" for none; see TestDevice::refused).
GGML_BACKEND_API ggml_backend_t nodeai_test_device_init(ggml_backend_t cpu, const char * refused_ops,
                                                        void (*free_cpu)(ggml_backend_t)) {
    auto * state = new TestDevice();
    state->cpu = cpu;
    state->free_cpu = free_cpu;
    std::stringstream names(refused_ops != nullptr ? refused_ops : "");
    for (std::string name; std::getline(names, name, ',');) {
        if (!name.empty()) state->refused.insert(name);
    }
    // A device of its own per backend, outside any registry (nothing looks it up by name).
    auto * device = new ggml_backend_device{kDeviceI, nullptr, state};
    state->buft = new ggml_backend_buffer_type{{buft_name, buft_alloc, buft_alignment, nullptr, nullptr, buft_is_host}, device, nullptr};
    return new ggml_backend{guid(), kBackendI, device, nullptr};
}

// How many nodes of an op ("CPY", or "CPY:q4_K" by its first source's type) the stand-in devices
// computed since the process started.
GGML_BACKEND_API long nodeai_test_device_ops_run(const char * op) {
    const auto found = ops_run.find(op);
    return found == ops_run.end() ? 0 : found->second;
}

}
