// Python keyword arguments into the core's option structs (see options.hpp). No numerics here.
#include "options.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace htsr::bindings {
namespace {

// One enum's Python names, in the order its error message lists them.
template <typename E>
struct Named {
    const char* name;
    E value;
};

constexpr Named<Precision> kPrecisions[] = {{"float64", Precision::Float64}, {"float32", Precision::Float32}};
constexpr Named<Method> kMethods[] = {{"auto", Method::Auto}, {"gram", Method::Gram}, {"svd", Method::Svd}};
constexpr Named<SmallNSelect> kSmallN[] = {{"penalized", SmallNSelect::Penalized}, {"ks", SmallNSelect::KS}};
constexpr Named<TPLRules> kTplRules[] = {{"powerlaw1", TPLRules::Powerlaw1}, {"powerlaw2", TPLRules::Powerlaw2}};
constexpr Named<EsdTransform> kEsdTransforms[] = {
    {"none", EsdTransform::None}, {"inverse", EsdTransform::Inverse}, {"sqrt", EsdTransform::Sqrt}};
constexpr Named<BootstrapMethod> kBootstrapMethods[] = {{"tail", BootstrapMethod::Tail},
                                                        {"full", BootstrapMethod::WholeEsd}};
constexpr Named<FixFingers> kFixFingers[] = {
    {"", FixFingers::None}, {"xmin_peak", FixFingers::XminPeak}, {"clip_xmax", FixFingers::ClipXmax}};
// fit: 'E_TPL' is the truncated power law with fix_fingers='xmin_peak' (to_tail_options).
enum class Fit { PowerLaw, TruncatedPowerLaw, TruncatedPowerLawXminPeak };
constexpr Named<Fit> kFits[] = {{"PL", Fit::PowerLaw}, {"TPL", Fit::TruncatedPowerLaw},
                                {"E_TPL", Fit::TruncatedPowerLawXminPeak}};

// "option must be 'a', 'b' or 'c', got 'x'" for a name not in the table.
template <typename E, std::size_t N>
E parse(const Named<E> (&table)[N], const std::string& name, const char* option) {
    for (const Named<E>& entry : table)
        if (name == entry.name) return entry.value;
    std::string choices;
    for (std::size_t i = 0; i < N; ++i)
        choices += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + ("'" + std::string(table[i].name) + "'");
    throw std::invalid_argument(std::string(option) + " must be " + choices + ", got '" + name + "'");
}

template <typename E, std::size_t N>
std::string name_of(const Named<E> (&table)[N], E value) {
    for (const Named<E>& entry : table)
        if (entry.value == value) return entry.name;
    throw std::logic_error("an enum value without a Python name");
}

std::string fit_name(TailDistribution distribution) {
    return name_of(kFits, distribution == TailDistribution::PowerLaw ? Fit::PowerLaw : Fit::TruncatedPowerLaw);
}

// fit and fix_fingers together: 'E_TPL' already chooses xmin_peak, so it cannot take clip_xmax.
void set_tail_options(PowerLawOptions& o, const std::string& fit, const std::string& fix_fingers) {
    const Fit kind = parse(kFits, fit, "fit");
    o.distribution = kind == Fit::PowerLaw ? TailDistribution::PowerLaw : TailDistribution::TruncatedPowerLaw;
    o.fix_fingers = parse(kFixFingers, fix_fingers, "fix_fingers");
    if (kind == Fit::TruncatedPowerLawXminPeak) {
        if (o.fix_fingers == FixFingers::ClipXmax)
            throw std::invalid_argument("fit='E_TPL' fixes fingers by xmin_peak; it cannot be combined with clip_xmax");
        o.fix_fingers = FixFingers::XminPeak;
    }
}

// analyze_layers(fit_quality={...}): keys gof, gof_resamples, compare_fits, farms, farms_aspect, farms_overlap,
// alpha_ci_method; a missing key keeps the core's default, an unknown one throws.
void set_fit_quality_options(AnalysisOptions& options, const py::object& fit_quality) {
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
    q.compare_fits = d.contains("compare_fits") && py::cast<bool>(d["compare_fits"]);
    q.farms = d.contains("farms") && py::cast<bool>(d["farms"]);
    if (d.contains("farms_aspect")) q.farms_options.aspect = py::cast<double>(d["farms_aspect"]);
    if (d.contains("farms_overlap")) q.farms_options.overlap = py::cast<double>(d["farms_overlap"]);
    if (d.contains("alpha_ci_method"))
        options.bootstrap.method = parse(kBootstrapMethods, py::cast<std::string>(d["alpha_ci_method"]), "alpha_ci_method");
}

}  // namespace

AnalyzeLayersArgs analyze_layers_defaults() {
    const AnalysisOptions core;
    return {
        .precision = name_of(kPrecisions, core.spectrum.precision),
        .method = name_of(kMethods, core.spectrum.method),
        .xmax = core.power_law.xmax_clip,
        .small_n = name_of(kSmallN, core.power_law.small_n),
        .tolerance = core.tolerance,
        .candidates = core.power_law.keep_candidates,
        .return_evals = false,
        .mp_fit = core.mp_fit,
        .randomize = py::none(),
        .alpha_ci = py::none(),
        .bootstrap = core.bootstrap.resamples,
        .seed = py::none(),
        .device = "cpu",
        .esd_transform = name_of(kEsdTransforms, core.esd_transform),
        .fit = fit_name(core.power_law.distribution),
        .fix_fingers = name_of(kFixFingers, core.power_law.fix_fingers),
        .xmin_max = core.power_law.xmin_max,
        .max_fingers = core.power_law.max_fingers,
        .finger_thresh = core.power_law.finger_thresh,
        .on_layer_done = py::none(),
        .fit_quality = py::none(),
    };
}

AnalysisOptions to_analysis_options(const AnalyzeLayersArgs& args) {
    AnalysisOptions o;
    o.esd_transform = parse(kEsdTransforms, args.esd_transform, "esd_transform");
    o.spectrum = to_spectrum_options(args.precision, args.method);
    o.power_law.xmax_clip = args.xmax;
    o.power_law.small_n = parse(kSmallN, args.small_n, "small_n");
    o.power_law.keep_candidates = args.candidates;
    set_tail_options(o.power_law, args.fit, args.fix_fingers);
    o.power_law.xmin_max = args.xmin_max;
    o.power_law.max_fingers = args.max_fingers;
    o.power_law.finger_thresh = args.finger_thresh;
    o.tolerance = args.tolerance;
    o.mp_fit = args.mp_fit;
    if (!args.randomize.is_none() && !py::isinstance<MersenneTwister>(args.randomize))
        throw std::invalid_argument("randomize must be a MersenneTwister or None, got " +
                                    py::cast<std::string>(py::type::of(args.randomize).attr("__name__")));
    o.randomize = args.randomize.is_none() ? nullptr : py::cast<MersenneTwister*>(args.randomize);
    const std::uint64_t seed = seed_or_fresh(args.seed);
    if (!args.alpha_ci.is_none()) {
        o.alpha_ci = true;
        std::tie(o.bootstrap.lo, o.bootstrap.hi) = py::cast<std::pair<double, double>>(args.alpha_ci);
        o.bootstrap.resamples = args.bootstrap;
        o.bootstrap.seed = seed;
    }
    o.fit_quality.goodness.seed = seed;
    set_fit_quality_options(o, args.fit_quality);
    return o;
}

FitPowerLawArgs fit_power_law_defaults() {
    const PowerLawOptions core;
    return {
        .xmax = core.xmax_clip,
        .small_n = name_of(kSmallN, core.small_n),
        .candidates = core.keep_candidates,
        .evals_thresh = core.evals_thresh,
        .fit = fit_name(core.distribution),
        .fix_fingers = name_of(kFixFingers, core.fix_fingers),
        .xmin_max = core.xmin_max,
        .max_fingers = core.max_fingers,
        .finger_thresh = core.finger_thresh,
        .tpl_rules = name_of(kTplRules, core.tpl_rules),
    };
}

PowerLawOptions to_power_law_options(const FitPowerLawArgs& args) {
    PowerLawOptions o;
    o.xmax_clip = args.xmax;
    o.small_n = parse(kSmallN, args.small_n, "small_n");
    o.keep_candidates = args.candidates;
    o.evals_thresh = args.evals_thresh;
    set_tail_options(o, args.fit, args.fix_fingers);
    o.xmin_max = args.xmin_max;
    o.max_fingers = args.max_fingers;
    o.finger_thresh = args.finger_thresh;
    o.tpl_rules = parse_tpl_rules(args.tpl_rules);
    check_power_law_options(o);
    return o;
}

PowerLawOptions plain_power_law_options(int xmax, const std::string& small_n) {
    PowerLawOptions o;
    if (xmax < 0) throw std::invalid_argument("xmax must be a non-negative count");
    o.xmax_clip = xmax;
    o.small_n = parse(kSmallN, small_n, "small_n");
    return o;
}

BootstrapOptions to_bootstrap_options(const py::object& levels, int resamples, const py::object& seed,
                                      const std::string& method) {
    BootstrapOptions o;
    std::tie(o.lo, o.hi) = py::cast<std::pair<double, double>>(levels);
    o.resamples = resamples;
    o.seed = seed_or_fresh(seed);
    o.method = parse(kBootstrapMethods, method, "method");
    check_bootstrap_options(o);
    return o;
}

SpectrumOptions to_spectrum_options(const std::string& precision, const std::string& method) {
    return {parse(kPrecisions, precision, "precision"), parse(kMethods, method, "method")};
}

TPLRules parse_tpl_rules(const std::string& rules) { return parse(kTplRules, rules, "tpl_rules"); }

std::uint64_t seed_or_fresh(const py::object& seed) {
    if (seed.is_none()) return static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}();
    return py::cast<std::uint64_t>(seed);
}

}  // namespace htsr::bindings
