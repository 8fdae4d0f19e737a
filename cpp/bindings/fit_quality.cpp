// pybind11 bindings of goodness.hpp, compare_fits.hpp, farms.hpp and fit_quality.hpp. No numerics here.
#include "fit_quality.hpp"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;
using namespace htsr;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::vector<double> ascending_values(const DoubleArray& evals, const char* what) {
    if (evals.ndim() != 1) throw std::invalid_argument(std::string(what) + " must be a 1-D array");
    std::vector<double> v(evals.data(), evals.data() + evals.size());
    for (double x : v)
        if (!std::isfinite(x)) throw std::invalid_argument(std::string(what) + " contain NaN or Inf");
    if (!std::is_sorted(v.begin(), v.end())) throw std::invalid_argument(std::string(what) + " must be sorted ascending");
    return v;
}

PowerLawOptions plain_fit_options(int xmax, const std::string& small_n) {
    PowerLawOptions o;
    if (xmax < 0) throw std::invalid_argument("xmax must be a non-negative count");
    o.xmax_clip = xmax;
    if (small_n == "penalized") o.small_n = SmallNSelect::Penalized;
    else if (small_n == "ks") o.small_n = SmallNSelect::KS;
    else throw std::invalid_argument("small_n must be 'penalized' or 'ks', got '" + small_n + "'");
    return o;
}

std::uint64_t seed_or_fresh(const py::object& seed) {
    if (seed.is_none()) return static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}();
    return py::cast<std::uint64_t>(seed);
}

void put_basic_fit(py::dict& d, const PowerLawFit& f) {
    d["alpha"] = f.alpha;
    d["xmin"] = f.xmin;
    d["D"] = f.D;
    d["status"] = f.status;
    d["fit_message"] = f.message;
}

void put_goodness(py::dict& d, const GoodnessOfFit& g) {
    d["pl_pvalue"] = g.p_value;
    d["gof_fitted"] = g.fitted;
}

void put_comparison(py::dict& d, const FitComparison& c, bool with_parameters) {
    for (std::size_t k = 0; k < kAlternatives; ++k) {
        const std::string name = kAlternativeNames[k];
        const LikelihoodRatio& lr = c.alternatives[k];
        d[py::str("R_" + name)] = lr.R;
        d[py::str("p_" + name)] = lr.p;
        if (with_parameters) {
            d[py::str("parameters_" + name)] = py::make_tuple(lr.parameters[0], lr.parameters[1]);
            d[py::str("converged_" + name)] = lr.converged;
        }
    }
    if (with_parameters) d["compared_alpha"] = c.alpha;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& p : parts) {
        if (p.empty()) continue;
        if (!out.empty()) out += "; ";
        out += p;
    }
    return out;
}

}  // namespace

void apply_fit_quality_options(AnalysisOptions& options, const py::object& fit_quality, const py::object& seed) {
    if (fit_quality.is_none()) return;
    if (!py::isinstance<py::dict>(fit_quality)) throw std::invalid_argument("fit_quality must be a dict or None");
    const py::dict d = py::reinterpret_borrow<py::dict>(fit_quality);
    static const char* known[] = {"gof", "gof_resamples", "compare_fits", "farms", "farms_aspect", "farms_overlap",
                                  "alpha_ci_method"};
    for (const auto& item : d) {
        const std::string key = py::cast<std::string>(item.first);
        if (std::find(std::begin(known), std::end(known), key) == std::end(known))
            throw std::invalid_argument("fit_quality: unknown key '" + key + "'");
    }
    FitQualityOptions& q = options.fit_quality;
    q.gof = d.contains("gof") && py::cast<bool>(d["gof"]);
    if (d.contains("gof_resamples")) q.goodness.resamples = py::cast<int>(d["gof_resamples"]);
    if (q.gof && q.goodness.resamples < 1) throw std::invalid_argument("gof_resamples must be at least 1");
    q.goodness.seed = seed_or_fresh(seed);
    q.compare_fits = d.contains("compare_fits") && py::cast<bool>(d["compare_fits"]);
    q.farms = d.contains("farms") && py::cast<bool>(d["farms"]);
    if (d.contains("farms_aspect")) q.farms_options.aspect = py::cast<double>(d["farms_aspect"]);
    if (d.contains("farms_overlap")) q.farms_options.overlap = py::cast<double>(d["farms_overlap"]);
    if (q.farms) farms_windows(1, 1, q.farms_options);  // checks the options once, before any work
    if (d.contains("alpha_ci_method")) {
        const std::string method = py::cast<std::string>(d["alpha_ci_method"]);
        if (method == "tail") options.bootstrap.method = BootstrapMethod::Tail;
        else if (method == "full") options.bootstrap.method = BootstrapMethod::WholeEsd;
        else throw std::invalid_argument("alpha_ci_method must be 'tail' or 'full', got '" + method + "'");
    }
}

void put_fit_quality_columns(py::dict& d, const LayerAnalysis& a, const AnalysisOptions& options) {
    const FitQualityOptions& q = options.fit_quality;
    std::vector<std::string> notes;
    if (q.gof) {
        put_goodness(d, a.quality.goodness);
        notes.push_back(a.quality.goodness.message.empty() ? "" : "gof: " + a.quality.goodness.message);
    }
    if (q.compare_fits) {
        put_comparison(d, a.quality.comparison, false);
        notes.push_back(a.quality.comparison.message.empty() ? "" : "compare_fits: " + a.quality.comparison.message);
    }
    if (q.any_test()) d["fit_quality"] = a.quality.verdict;
    if (q.farms) {
        const bool ok = a.farms.error.empty() && a.farms.fit.status == "success";
        d["alpha_farms"] = ok ? a.farms.fit.alpha : -1.0;
        d["farms_submatrices"] = a.farms.submatrices;
        if (!ok) notes.push_back("farms: " + (a.farms.error.empty() ? a.farms.fit.message : a.farms.error));
    }
    if (options.alpha_ci) d["warning_ci"] = interval_warning(a.alpha_ci);
    d["quality_message"] = joined(notes);
}

void bind_fit_quality(py::module_& m) {
    m.def(
        "goodness_of_fit",
        [](const DoubleArray& evals, int resamples, const py::object& seed, int xmax, const std::string& small_n) {
            const std::vector<double> v = ascending_values(evals, "eigenvalues");
            const PowerLawOptions opts = plain_fit_options(xmax, small_n);
            GoodnessOptions g;
            if (resamples < 1) throw std::invalid_argument("resamples must be at least 1");
            g.resamples = resamples;
            g.seed = seed_or_fresh(seed);
            PowerLawFit fit;
            GoodnessOfFit result;
            {
                py::gil_scoped_release release;
                fit = fit_power_law(v, opts);
                result = power_law_goodness(v, fit, opts, g);
            }
            py::dict d;
            put_basic_fit(d, fit);
            put_goodness(d, result);
            d["gof_message"] = result.message;
            return d;
        },
        py::arg("evals"), py::arg("resamples") = 1000, py::arg("seed") = py::none(), py::arg("xmax") = 0,
        py::arg("small_n") = "penalized",
        "Power-law fit of ascending eigenvalues and its goodness-of-fit p-value (Clauset, Shalizi & Newman 2009: "
        "semi-parametric bootstrap of the KS distance, `resamples` synthetic data sets, each refitted): pl_pvalue "
        "(-1 when none), gof_fitted, gof_message.");

    m.def(
        "compare_fits",
        [](const DoubleArray& evals, int xmax, const std::string& small_n) {
            const std::vector<double> v = ascending_values(evals, "eigenvalues");
            const PowerLawOptions opts = plain_fit_options(xmax, small_n);
            PowerLawFit fit;
            FitComparison c;
            {
                py::gil_scoped_release release;
                fit = fit_power_law(v, opts);
                c = compare_fits(v, fit, opts);
            }
            py::dict d;
            put_basic_fit(d, fit);
            put_comparison(d, c, true);
            d["compare_message"] = c.message;
            return d;
        },
        py::arg("evals"), py::arg("xmax") = 0, py::arg("small_n") = "penalized",
        "Power-law fit of ascending eigenvalues, then likelihood-ratio tests of its tail against the exponential, "
        "lognormal, stretched exponential and truncated power law as the `powerlaw` package defines them: "
        "R_<alt> (Vuong-normalized; > 0 favours the power law), p_<alt>, parameters_<alt>, converged_<alt>, "
        "compared_alpha.");

    m.def(
        "compare_tail",
        [](const DoubleArray& tail) {
            const std::vector<double> v = ascending_values(tail, "tail values");
            FitComparison c;
            {
                py::gil_scoped_release release;
                c = compare_tail(v);
            }
            py::dict d;
            put_comparison(d, c, true);
            d["compare_message"] = c.message;
            return d;
        },
        py::arg("tail"),
        "compare_fits on a given tail (ascending, its first value is xmin): as powerlaw.Fit(tail, xmin=tail[0], "
        "parameter_ranges={'alpha': [0, None]}).distribution_compare('power_law', alt, normalized_ratio=True).");

    m.def(
        "farms_windows",
        [](std::int64_t rows, std::int64_t cols, double aspect, double overlap) {
            FarmsOptions o;
            o.aspect = aspect;
            o.overlap = overlap;
            py::list out;
            for (const FarmsWindow& w : farms_windows(rows, cols, o)) out.append(py::make_tuple(w.row0, w.col0, w.rows, w.cols));
            return out;
        },
        py::arg("rows"), py::arg("cols"), py::arg("aspect") = 1.0, py::arg("overlap") = 0.5,
        "The FARMS windows of a rows x cols matrix as (row0, col0, rows, cols) tuples (see farms.hpp).");

    m.def(
        "interval_warning",
        [](double lo, double hi) {
            AlphaInterval ci;
            ci.lo = lo;
            ci.hi = hi;
            return interval_warning(ci);
        },
        py::arg("lo"), py::arg("hi"), "The warning_ci text of an alpha interval (-1: none).");
}
