// The one table of result keys (see results.hpp). A row: key, groups, how to read it from a LayerAnalysis.
// Rows are in the order the dicts list their keys; a row read before a later one moves its array out.
#include "results.hpp"

#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "arrays.hpp"

namespace htsr::bindings {
namespace {

struct Row {
    std::string key;
    ResultGroups groups;
    std::function<py::object(LayerAnalysis&, ResultGroups asked)> read;
    bool (*present)(const LayerAnalysis&) = nullptr;  // null: whenever its group is asked for
};

// A C++ value as a Python object (arrays and tuples already are one).
template <typename T>
py::object as_object(T&& value) {
    if constexpr (std::is_base_of_v<py::handle, std::decay_t<T>>) return std::forward<T>(value);
    else return py::cast(std::forward<T>(value));
}

// A row whose value depends on the layer alone.
template <typename Read>
Row row(std::string key, ResultGroups groups, Read read, bool (*present)(const LayerAnalysis&) = nullptr) {
    return {std::move(key), groups, [read](LayerAnalysis& a, ResultGroups) { return as_object(read(a)); }, present};
}

using A = LayerAnalysis&;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

bool kept_candidates(const LayerAnalysis& a) { return !a.fit.alphas.empty() || !a.fit.Ds.empty(); }

// quality_message: why each statistic asked for is missing ('' when none is), "name: why" joined by "; ".
std::string quality_message(const LayerAnalysis& a, ResultGroups asked) {
    std::vector<std::string> notes;
    if ((asked & kGoodness) && !a.quality.goodness.message.empty()) notes.push_back("gof: " + a.quality.goodness.message);
    if ((asked & kComparison) && !a.quality.comparison.message.empty())
        notes.push_back("compare_fits: " + a.quality.comparison.message);
    if ((asked & kFarms) && !(a.farms.error.empty() && a.farms.fit.status == "success"))
        notes.push_back("farms: " + (a.farms.error.empty() ? a.farms.fit.message : a.farms.error));
    std::string out;
    for (const std::string& note : notes) out += (out.empty() ? "" : "; ") + note;
    return out;
}

std::vector<Row> spectrum_rows() {
    return {
        row("error", kSpectrum, [](A a) { return a.spectrum.error; }),
        row("N", kSpectrum, [](A a) { return a.spectrum.N; }),
        row("M", kSpectrum, [](A a) { return a.spectrum.M; }),
        row("num_evals", kSpectrum, [](A a) { return static_cast<long long>(a.spectrum.evals.size()); }),
        row("sv_max", kSpectrum, [](A a) { return a.spectrum.sv_max; }),
        row("sv_min", kSpectrum, [](A a) { return a.spectrum.sv_min; }),
        row("lambda_max", kSpectrum, [](A a) { return a.spectrum.evals.empty() ? 0.0 : a.spectrum.evals.back(); }),
        row("rank_loss", kSpectrum, [](A a) { return a.spectrum.rank_loss; }),
        row("svd_fallback", kSpectrum, [](A a) { return a.spectrum.svd_fallback; }),
        row("noise_floor", kSpectrum, [](A a) { return a.spectrum.noise_floor; }),
        row("on_cpu_fallback", kSpectrum, [](A a) { return a.spectrum.on_cpu_fallback; }),
        row("evals", kEvals, [](A a) { return to_numpy(std::move(a.spectrum.evals)); }),
    };
}

std::vector<Row> fit_rows() {
    return {
        row("alpha", kFit | kFitSummary, [](A a) { return a.fit.alpha; }),
        row("xmin", kFit | kFitSummary, [](A a) { return a.fit.xmin; }),
        row("xmax", kFit, [](A a) { return a.fit.xmax; }),
        row("D", kFit | kFitSummary, [](A a) { return a.fit.D; }),
        row("sigma", kFit, [](A a) { return a.fit.sigma; }),
        row("num_pl_spikes", kFit, [](A a) { return a.fit.num_pl_spikes; }),
        row("num_fitted", kFit, [](A a) { return a.fit.n_fitted; }),
        row("status", kFit | kFitSummary, [](A a) { return a.fit.status; }),
        row("warning", kFit, [](A a) { return a.fit.warning; }),
        row("fit_message", kFit | kFitSummary, [](A a) { return a.fit.message; }),
        row("Lambda", kFit, [](A a) { return a.fit.Lambda; }),
        row("num_fingers", kFit, [](A a) { return a.fit.num_fingers; }),
        row("raw_alpha", kFit, [](A a) { return a.fit.raw_alpha; }),
        row("xmins", kFit, [](A a) { return to_numpy(std::move(a.fit.xmins)); }, kept_candidates),
        row("alphas", kFit, [](A a) { return to_numpy(std::move(a.fit.alphas)); }, kept_candidates),
        row("Ds", kFit, [](A a) { return to_numpy(std::move(a.fit.Ds)); }, kept_candidates),
    };
}

std::vector<Row> metrics_rows() {
    return {
        row("norm", kMetrics, [](A a) { return a.metrics.norm; }),
        row("log_norm", kMetrics, [](A a) { return a.metrics.log_norm; }),
        row("spectral_norm", kMetrics, [](A a) { return a.metrics.spectral_norm; }),
        row("log_spectral_norm", kMetrics, [](A a) { return a.metrics.log_spectral_norm; }),
        row("alpha_weighted", kMetrics, [](A a) { return a.metrics.alpha_weighted; }),
        row("log_alpha_norm", kMetrics, [](A a) { return a.metrics.log_alpha_norm; }),
        row("stable_rank", kMetrics, [](A a) { return a.metrics.stable_rank; }),
        row("matrix_rank", kMetrics, [](A a) { return a.metrics.matrix_rank; }),
        row("entropy", kMetrics, [](A a) { return a.metrics.entropy; }),
        row("weak_rank_loss", kMetrics, [](A a) { return a.metrics.weak_rank_loss; }),
    };
}

// The Marchenko-Pastur columns of an MPFit, named with `prefix` (the randomized ESD's are rand_*).
std::vector<Row> marchenko_pastur_rows(const std::string& prefix, ResultGroups groups, MPFit& (*fit)(A)) {
    return {
        row(prefix + "num_spikes", groups, [fit](A a) { return fit(a).num_spikes; }),
        row(prefix + "sigma_mp", groups, [fit](A a) { return fit(a).sigma_mp; }),
        row(prefix + "mp_softrank", groups, [fit](A a) { return fit(a).mp_softrank; }),
        row(prefix + "W_scale", groups, [fit](A a) { return fit(a).W_scale; }),
        row(prefix + "bulk_max", groups, [fit](A a) { return fit(a).bulk_max; }),
        row(prefix + "bulk_min", groups, [fit](A a) { return fit(a).bulk_min; }),
        row(prefix + "mp_message", groups, [fit](A a) { return fit(a).message; }),
    };
}

std::vector<Row> randomized_rows() {
    std::vector<Row> rows = {
        row("max_rand_eval", kRandomized, [](A a) { return a.randomized.done ? a.randomized.max_rand_eval : kNaN; }),
        row("rand_distance", kRandomized, [](A a) { return a.randomized.done ? a.randomized.rand_distance : kNaN; }),
        row("ww_softrank", kRandomized, [](A a) { return a.randomized.done ? a.randomized.ww_softrank : kNaN; }),
        row("ww_maxdist", kRandomized, [](A a) { return a.randomized.done ? a.randomized.ww_maxdist : kNaN; }),
    };
    for (Row& r : marchenko_pastur_rows("rand_", kRandomized, [](A a) -> MPFit& { return a.randomized.mp; }))
        rows.push_back(std::move(r));
    rows.push_back(row("num_traps", kRandomized, [](A a) { return a.randomized.mp.num_spikes; }));
    rows.push_back(row("rand_evals", kRandomizedEvals, [](A a) { return to_numpy(std::move(a.randomized.rand_evals)); }));
    return rows;
}

// R_<alt>, p_<alt> (kComparison) and parameters_<alt>, converged_<alt> (kComparisonDetails), alternative by
// alternative, with the powerlaw package's names (compare_fits.hpp).
std::vector<Row> comparison_rows() {
    std::vector<Row> rows;
    for (std::size_t k = 0; k < kAlternatives; ++k) {
        const std::string name = kAlternativeNames[k];
        rows.push_back(row("R_" + name, kComparison, [k](A a) { return a.quality.comparison.alternatives[k].R; }));
        rows.push_back(row("p_" + name, kComparison, [k](A a) { return a.quality.comparison.alternatives[k].p; }));
        rows.push_back(row("parameters_" + name, kComparisonDetails, [k](A a) {
            const LikelihoodRatio& lr = a.quality.comparison.alternatives[k];
            return py::make_tuple(lr.parameters[0], lr.parameters[1]);
        }));
        rows.push_back(row("converged_" + name, kComparisonDetails,
                           [k](A a) { return a.quality.comparison.alternatives[k].converged; }));
    }
    rows.push_back(row("compared_alpha", kComparisonDetails, [](A a) { return a.quality.comparison.alpha; }));
    rows.push_back(row("compare_message", kComparisonDetails, [](A a) { return a.quality.comparison.message; }));
    return rows;
}

std::vector<Row> make_table() {
    std::vector<Row> rows;
    auto add = [&rows](std::vector<Row> more) {
        for (Row& r : more) rows.push_back(std::move(r));
    };
    add(spectrum_rows());
    add(fit_rows());
    add(metrics_rows());
    add(marchenko_pastur_rows("", kMarchenkoPastur, [](A a) -> MPFit& { return a.mp; }));
    add({
        row("status", kMarchenkoPasturFit, [](A a) { return a.mp.status; }),
        row("cutoff", kMarchenkoPasturFit, [](A a) { return a.mp.cutoff; }),
        row("grid", kMarchenkoPasturGrid, [](A a) { return to_numpy(std::move(a.mp.grid)); }),
        row("objective", kMarchenkoPasturGrid, [](A a) { return to_numpy(std::move(a.mp.objective)); }),
        row("alpha_ci_lo", kAlphaInterval, [](A a) { return a.alpha_ci.lo; }),
        row("alpha_ci_hi", kAlphaInterval, [](A a) { return a.alpha_ci.hi; }),
        row("alpha_ci_fitted", kAlphaInterval, [](A a) { return a.alpha_ci.fitted; }),
    });
    add(randomized_rows());
    add({
        row("pl_pvalue", kGoodness, [](A a) { return a.quality.goodness.p_value; }),
        row("gof_fitted", kGoodness, [](A a) { return a.quality.goodness.fitted; }),
        row("gof_message", kGoodnessMessage, [](A a) { return a.quality.goodness.message; }),
    });
    add(comparison_rows());
    add({
        row("fit_quality", kFitQuality, [](A a) { return a.quality.verdict; }),
        row("alpha_farms", kFarms, [](A a) {
            return a.farms.error.empty() && a.farms.fit.status == "success" ? a.farms.fit.alpha : -1.0;
        }),
        row("farms_submatrices", kFarms, [](A a) { return a.farms.submatrices; }),
        row("warning_ci", kIntervalWarning, [](A a) { return interval_warning(a.alpha_ci); }),
        {"quality_message", kQualityMessage,
         [](A a, ResultGroups asked) { return py::cast(quality_message(a, asked)); }},
    });
    return rows;
}

}  // namespace

py::dict result_dict(LayerAnalysis& a, ResultGroups groups) {
    static const std::vector<Row> table = make_table();
    py::dict d;
    for (const Row& r : table)
        if ((r.groups & groups) != 0 && (r.present == nullptr || r.present(a))) d[py::str(r.key)] = r.read(a, groups);
    return d;
}

ResultGroups analysis_groups(const LayerAnalysis& a, const AnalysisOptions& options, bool return_evals) {
    ResultGroups groups = kSpectrum | (return_evals ? kEvals : 0u);
    if (!a.spectrum.error.empty()) return groups;
    groups |= kFit | kMetrics | kQualityMessage;
    if (options.mp_fit) groups |= kMarchenkoPastur;
    if (options.alpha_ci) groups |= kAlphaInterval | kIntervalWarning;
    if (options.randomize != nullptr) groups |= kRandomized | (return_evals ? kRandomizedEvals : 0u);
    const FitQualityOptions& q = options.fit_quality;
    if (q.gof) groups |= kGoodness;
    if (q.compare_fits) groups |= kComparison;
    if (q.any_test()) groups |= kFitQuality;
    if (q.farms) groups |= kFarms;
    return groups;
}

}  // namespace htsr::bindings
