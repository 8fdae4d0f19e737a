#include "dequant_values.hpp"

#include <sstream>
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace htsr {

void* allocate_output(std::size_t bytes) {
    constexpr std::size_t kHugePage = std::size_t{1} << 21;
    if (bytes < 2 * kHugePage) {
        void* p = std::malloc(bytes ? bytes : 1);
        if (!p) throw std::bad_alloc();
        return p;
    }
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE);  // a hint: without transparent huge pages nothing changes
#endif
    return p;
}

std::int64_t TypedArray::count() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
}

std::string TypedArray::describe() const {
    std::ostringstream s;
    s << detail::type_name(type) << " [";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << "]";
    return s.str();
}

}  // namespace htsr

namespace htsr::detail {

std::string type_name(ElemType t) {
    switch (t) {
        case ElemType::Float32: return "float32";
        case ElemType::Float64: return "float64";
        case ElemType::Float16: return "float16";
        case ElemType::BFloat16: return "bfloat16";
        case ElemType::Float8E4M3: return "float8_e4m3fn";
        case ElemType::Float8E5M2: return "float8_e5m2";
        case ElemType::E8M0: return "float8_e8m0fnu";
        case ElemType::Int8: return "int8";
        case ElemType::UInt8: return "uint8";
        case ElemType::Int16: return "int16";
        case ElemType::Int32: return "int32";
        case ElemType::UInt32: return "uint32";
        case ElemType::Int64: return "int64";
    }
    return "unknown";
}

float element(const TypedArray& a, std::int64_t i) {
    const auto* p = static_cast<const unsigned char*>(a.data);
    switch (a.type) {
        case ElemType::Float32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
        case ElemType::Float64: { double v; std::memcpy(&v, p + 8 * i, 8); return static_cast<float>(v); }
        case ElemType::Float16: { std::uint16_t v; std::memcpy(&v, p + 2 * i, 2); return f16_to_float(v); }
        case ElemType::BFloat16: { std::uint16_t v; std::memcpy(&v, p + 2 * i, 2); return bf16_to_float(v); }
        case ElemType::Float8E4M3: return f8e4m3_to_float(p[i]);
        case ElemType::Float8E5M2: return f8e5m2_to_float(p[i]);
        case ElemType::E8M0: return e8m0_to_float(p[i]);
        case ElemType::Int8: return static_cast<float>(static_cast<std::int8_t>(p[i]));
        case ElemType::UInt8: return static_cast<float>(p[i]);
        case ElemType::Int16: { std::int16_t v; std::memcpy(&v, p + 2 * i, 2); return static_cast<float>(v); }
        case ElemType::Int32: { std::int32_t v; std::memcpy(&v, p + 4 * i, 4); return static_cast<float>(v); }
        case ElemType::UInt32: { std::uint32_t v; std::memcpy(&v, p + 4 * i, 4); return static_cast<float>(v); }
        case ElemType::Int64: { std::int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<float>(v); }
    }
    return 0.0f;
}

std::vector<float> decode_all(const TypedArray& a) {
    std::vector<float> out(static_cast<std::size_t>(a.count()));
    for (std::int64_t i = 0; i < a.count(); ++i) out[static_cast<std::size_t>(i)] = element(a, i);
    return out;
}

void require_rank(const TypedArray& a, std::size_t rank, const char* what) {
    if (a.shape.size() != rank)
        fail(std::string(what) + " must have " + std::to_string(rank) + " dims, got " + a.describe());
}

void require_types(const TypedArray& a, std::initializer_list<ElemType> allowed, const char* what) {
    std::string names;
    for (ElemType t : allowed) {
        if (t == a.type) return;
        names += (names.empty() ? "" : ", ") + type_name(t);
    }
    fail(std::string(what) + " has type " + type_name(a.type) + " (expected " + names + ")");
}

void require_shape(const TypedArray& a, const std::vector<std::int64_t>& shape, const char* what) {
    if (a.shape == shape) return;
    TypedArray expected{nullptr, a.type, shape};
    fail(std::string(what) + " is " + a.describe() + ", expected shape " + expected.describe().substr(type_name(a.type).size() + 1));
}

void require_bits(int bits, std::initializer_list<int> allowed, const char* format) {
    std::string names;
    for (int b : allowed) {
        if (b == bits) return;
        names += (names.empty() ? "" : ", ") + std::to_string(b);
    }
    fail(std::string(format) + ": " + std::to_string(bits) + "-bit codes are not supported (supported: " + names + ")");
}

const std::uint32_t* words_of(const TypedArray& a, const char* what) {
    require_types(a, {ElemType::Int32, ElemType::UInt32}, what);
    return static_cast<const std::uint32_t*>(a.data);
}

}  // namespace htsr::detail
