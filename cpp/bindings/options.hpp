// Python keyword arguments into the core's option structs. htsr/options.py owns the user-facing checks; here
// only what cannot diverge from them: names parsed from one table per enum (an unknown name throws), and the
// core's own guards (check_analysis_options) before any work.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "htsr/analysis.hpp"
#include "htsr/bootstrap.hpp"
#include "htsr/powerlaw.hpp"
#include "htsr/spectrum.hpp"

namespace htsr::bindings {

namespace py = pybind11;

// The keywords of _core.analyze_layers after `layers`, in its order (module.cpp fills it by name).
struct AnalyzeLayersArgs {
    std::string precision, method;
    int xmax;
    std::string small_n;
    double tolerance;
    bool candidates, return_evals, mp_fit;
    py::object randomize, alpha_ci;   // None | MersenneTwister; None | (lo, hi)
    int bootstrap;
    py::object seed;                  // None: a fresh random seed
    std::string device, esd_transform, fit, fix_fingers;
    double xmin_max;
    int max_fingers;
    double finger_thresh;
    py::object on_layer_done, fit_quality;  // None | callable(index, dict); None | dict (see options.cpp)
};

// The binding's defaults (module.cpp's py::arg defaults), taken from the core's option structs.
AnalyzeLayersArgs analyze_layers_defaults();

// The one converter of analyze_layers' keywords (all but device, return_evals and on_layer_done, which are the
// call's business, not the analysis').
AnalysisOptions to_analysis_options(const AnalyzeLayersArgs& args);

// The keywords of _core.fit_power_law after `evals`, in its order.
struct FitPowerLawArgs {
    int xmax;
    std::string small_n;
    bool candidates;
    double evals_thresh;
    std::string fit, fix_fingers;
    double xmin_max;
    int max_fingers;
    double finger_thresh;
    std::string tpl_rules;
};

// The binding's defaults, taken from PowerLawOptions.
FitPowerLawArgs fit_power_law_defaults();

PowerLawOptions to_power_law_options(const FitPowerLawArgs& args);

// The plain power-law fit of the single-ESD statistics (goodness_of_fit, compare_fits, bootstrap_alpha).
PowerLawOptions plain_power_law_options(int xmax, const std::string& small_n);

// bootstrap_alpha's interval options: levels (lo, hi), resamples, seed, method 'tail' | 'full'.
BootstrapOptions to_bootstrap_options(const py::object& levels, int resamples, const py::object& seed,
                                      const std::string& method);

SpectrumOptions to_spectrum_options(const std::string& precision, const std::string& method);
TPLRules parse_tpl_rules(const std::string& rules);

// seed, or a fresh random one when None.
std::uint64_t seed_or_fresh(const py::object& seed);

}  // namespace htsr::bindings
