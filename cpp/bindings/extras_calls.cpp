// detX, eigenvector statistics and truncated SVD for Python (weightwatcher's detX, vectors, SVDSmoothing /
// SVDSharpness; see calls.hpp). No numerics here.
#include <cmath>
#include <stdexcept>
#include <string>

#include "calls.hpp"
#include "htsr/eigenvectors.hpp"

namespace htsr::bindings {

py::dict detx_constraint(const DoubleArray& evals) {
    const DetX d = htsr::detx_constraint(to_values(evals));
    py::dict out;
    out["detX_num"] = d.num;
    out["detX_idx"] = d.index;
    out["detX_val"] = d.value;
    out["detX_val_unrescaled"] = d.value_rescaled;
    return out;
}

py::dict eigenvector_metrics(const py::list& slices, double scale, long long tail_count) {
    KeepAlive keep_alive;
    LayerInput layer;
    layer.scale = scale;
    for (const py::handle& s : slices) layer.slices.push_back(to_view(s, keep_alive));
    VectorMetrics v;
    {
        py::gil_scoped_release release;
        v = htsr::eigenvector_metrics(layer, tail_count);
    }
    static const char* stats[3] = {"vec_entropy", "loc_ratio", "part_ratio"};
    static const char* groups[4] = {"bulk_mean_", "bulk_var_", "tail_mean_", "tail_var_"};
    py::dict out;
    for (int s = 0; s < 3; ++s)
        for (int g = 0; g < 4; ++g) out[py::str(std::string(groups[g]) + stats[s])] = v.values[s][g];
    return out;
}

py::typing::Tuple<double, double, double> vector_statistics(const DoubleArray& v) {
    if (v.ndim() != 1 || v.size() == 0) throw std::invalid_argument("expected a non-empty 1-D vector");
    return py::typing::Tuple<double, double, double>(py::make_tuple(
        discrete_entropy(v.data(), v.size()), localization_ratio(v.data(), v.size()), participation_ratio(v.data(), v.size())));
}

py::array_t<double> svd_truncate(const DoubleArray& W, long long keep) {
    if (W.ndim() != 2 || W.shape(0) == 0 || W.shape(1) == 0)
        throw std::invalid_argument("svd_truncate needs a non-empty 2-D matrix");
    for (py::ssize_t i = 0; i < W.size(); ++i)
        if (!std::isfinite(W.data()[i])) throw std::invalid_argument("matrix contains NaN or Inf values");
    const std::int64_t rows = W.shape(0), cols = W.shape(1);
    std::vector<double> out;
    {
        py::gil_scoped_release release;
        out = htsr::svd_truncate(W.data(), rows, cols, keep);
    }
    return to_numpy(std::move(out), rows, cols);
}

}  // namespace htsr::bindings
