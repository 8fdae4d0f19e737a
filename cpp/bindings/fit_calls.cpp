// One ESD's fits and metrics for Python (see calls.hpp). No numerics here.
#include <limits>
#include <stdexcept>

#include "calls.hpp"
#include "htsr/analysis.hpp"
#include "htsr/tpl.hpp"
#include "results.hpp"

namespace htsr::bindings {

py::dict fit_power_law(const DoubleArray& evals, const FitPowerLawArgs& args) {
    const std::vector<double> v = to_values(evals);
    const PowerLawOptions options = to_power_law_options(args);
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.fit = htsr::fit_power_law(v, options);
    }
    return result_dict(a, kFit);
}

py::dict fit_tpl_at(const DoubleArray& tail, const std::string& tpl_rules) {
    const std::vector<double> v = to_values(tail);
    if (v.size() < 2) throw std::invalid_argument("the tail needs at least 2 values");
    const TPLCandidate c = htsr::fit_tpl_at(v.data(), static_cast<std::int64_t>(v.size()), parse_tpl_rules(tpl_rules));
    py::dict d;  // one optimizer run, not a layer result: its own keys
    d["alpha"] = c.alpha;
    d["Lambda"] = c.Lambda;
    d["neg_loglik"] = c.neg_loglik;
    d["valid"] = c.valid;
    d["evaluations"] = c.evaluations;
    return d;
}

double tpl_ks_distance(const DoubleArray& data, std::int64_t i, double alpha, double Lambda, const std::string& tpl_rules) {
    const std::vector<double> v = to_values(data);
    if (i < 0 || i >= static_cast<std::int64_t>(v.size())) throw std::invalid_argument("xmin index out of range");
    return htsr::tpl_ks_distance(v, i, alpha, Lambda, parse_tpl_rules(tpl_rules), std::numeric_limits<double>::infinity());
}

py::typing::Tuple<double, double> xmin_peak_range(const DoubleArray& values, double xmin_max) {
    const std::vector<double> v = to_values(values);
    if (v.empty()) throw std::invalid_argument("no values");
    const XminRange r = htsr::xmin_peak_range(v, xmin_max);
    return py::typing::Tuple<double, double>(py::make_tuple(r.lo, r.hi));
}

py::dict layer_metrics(const DoubleArray& evals, double alpha, std::int64_t N, double tolerance) {
    LayerAnalysis a;
    a.metrics = htsr::layer_metrics(to_values(evals), alpha, N, tolerance);
    return result_dict(a, kMetrics);
}

py::dict fit_marchenko_pastur(const DoubleArray& evals, double Q, std::int64_t M, bool keep_grid) {
    const std::vector<double> v = to_values(evals);
    MPFitOptions options;
    options.keep_grid = keep_grid;
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.mp = htsr::fit_marchenko_pastur(v, Q, M, options);
    }
    return result_dict(a, kMarchenkoPastur | kMarchenkoPasturFit | (keep_grid ? kMarchenkoPasturGrid : 0u));
}

py::array_t<double> mp_density(const DoubleArray& t, double Q, double sigma, const std::string& law) {
    if (law != "mp" && law != "quarter_circle") throw std::invalid_argument("law: 'mp' or 'quarter_circle'");
    std::vector<double> out(static_cast<std::size_t>(t.size()));
    const double* in = t.data();
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = law == "mp" ? marchenko_pastur_density(in[i], Q, sigma) : quarter_circle_density(in[i], sigma);
    return to_numpy(std::move(out));
}

py::dict bootstrap_alpha(const DoubleArray& evals, const py::object& alpha_ci, int bootstrap, const py::object& seed,
                         int xmax, const std::string& small_n, const std::string& method) {
    const std::vector<double> v = to_values(evals);
    FitPowerLawArgs fit_args = fit_power_law_defaults();
    fit_args.xmax = xmax;
    fit_args.small_n = small_n;
    const PowerLawOptions options = to_power_law_options(fit_args);
    const BootstrapOptions interval = to_bootstrap_options(alpha_ci, bootstrap, seed, method);
    LayerAnalysis a;
    {
        py::gil_scoped_release release;
        a.fit = htsr::fit_power_law(v, options);
        a.alpha_ci = htsr::bootstrap_alpha(v, a.fit, options, interval);
    }
    return result_dict(a, kFit | kAlphaInterval);
}

double jensen_shannon_distance(const DoubleArray& p, const DoubleArray& q) {
    return htsr::jensen_shannon_distance(to_values(p), to_values(q));
}

}  // namespace htsr::bindings
