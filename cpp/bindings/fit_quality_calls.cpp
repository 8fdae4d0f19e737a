// The fit-quality statistics of one ESD for Python (see calls.hpp). No numerics here.
#include <pybind11/stl.h>

#include "calls.hpp"
#include "htsr/analysis.hpp"
#include "results.hpp"

namespace htsr::bindings {

py::dict goodness_of_fit(const DoubleArray& evals, int resamples, const py::object& seed, int xmax,
                         const std::string& small_n) {
    const std::vector<double> v = to_ascending_values(evals, "eigenvalues");
    const PowerLawOptions options = plain_power_law_options(xmax, small_n);
    if (resamples < 1) throw std::invalid_argument("resamples must be at least 1");
    GoodnessOptions goodness;
    goodness.resamples = resamples;
    goodness.seed = seed_or_fresh(seed);
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.fit = htsr::fit_power_law(v, options);
        a.quality.goodness = power_law_goodness(v, a.fit, options, goodness);
    }
    return result_dict(a, kFitSummary | kGoodness | kGoodnessMessage);
}

py::dict compare_fits(const DoubleArray& evals, int xmax, const std::string& small_n) {
    const std::vector<double> v = to_ascending_values(evals, "eigenvalues");
    const PowerLawOptions options = plain_power_law_options(xmax, small_n);
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.fit = htsr::fit_power_law(v, options);
        a.quality.comparison = htsr::compare_fits(v, a.fit, options);
    }
    return result_dict(a, kFitSummary | kComparison | kComparisonDetails);
}

py::dict compare_tail(const DoubleArray& tail) {
    const std::vector<double> v = to_ascending_values(tail, "tail values");
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.quality.comparison = htsr::compare_tail(v);
    }
    return result_dict(a, kComparison | kComparisonDetails);
}

py::list farms_windows(std::int64_t rows, std::int64_t cols, double aspect, double overlap) {
    FarmsOptions options;
    options.aspect = aspect;
    options.overlap = overlap;
    py::list out;
    for (const FarmsWindow& w : htsr::farms_windows(rows, cols, options))
        out.append(py::make_tuple(w.row0, w.col0, w.rows, w.cols));
    return out;
}

std::string interval_warning(double lo, double hi) {
    AlphaInterval interval;
    interval.lo = lo;
    interval.hi = hi;
    return htsr::interval_warning(interval);
}

}  // namespace htsr::bindings
