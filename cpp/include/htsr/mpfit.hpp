// Marchenko-Pastur fit of an ESD's bulk (spec §6, mp_fit): sigma_mp, bulk edges, spikes, mp_softrank.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace htsr {

// The compatible fit (weightwatcher 0.7.7's objective, found in milliseconds):
//  1. rescale the ESD to mean 1: x = W_scale^2 * lambda, W_scale = sqrt(n / sum(lambda));
//  2. a linear-kernel density estimate (bandwidth 0.1) of x (of sqrt(x) when Q == 1) on 1000 points of
//     [0, max + 0.5], computed once from the sorted values (the reference refits it for every sigma);
//  3. the squared residual between that density and the MP density (quarter circle when Q == 1) over the
//     points where the density exceeds 0.01, with the reference's penalty for edges outside the data;
//  4. its minimum over the reference's sigma grid (0.05 s0 .. 2 s0 step 0.01 s0, s0 from lambda_max), then
//     a 1-D Nelder-Mead polish from the best grid point with the reference's simplex rules and tolerances;
//  5. bulk_max = (sigma (1 + 1/sqrt Q))^2, bulk_min = (sigma (1 - 1/sqrt Q))^2, spikes above bulk_max plus
//     the Tracy-Widom allowance sqrt(Q^-1/2 bulk_max^2/3 M^-2/3), mp_softrank = bulk_max / max(x).
struct MPFit {
    std::string status = "failed";   // "success" | "failed"
    std::string message;
    double sigma_mp = -1, bulk_min = -1, bulk_max = -1, mp_softrank = -1, W_scale = -1;
    long long num_spikes = -1;
    double cutoff = -1;              // the spike threshold bulk_max + Tracy-Widom allowance, rescaled units
    // Diagnostics (keep_grid): the sigma grid and the objective on it, before the polish.
    std::vector<double> grid, objective;
};

struct MPFitOptions {
    double bandwidth = 0.1;   // the reference's KDE bandwidth, in rescaled units
    bool keep_grid = false;
};

// The Marchenko-Pastur density at rescaled eigenvalue t for variance sigma^2 and aspect Q (0 outside its
// support), and the quarter-circle density of singular values t (Q == 1).
double marchenko_pastur_density(double t, double Q, double sigma);
double quarter_circle_density(double t, double sigma);
// The law the fit matches: the quarter circle (of sqrt(x)) when Q == 1, else Marchenko-Pastur.
inline double mp_law_density(double t, double Q, double sigma) {
    return Q == 1.0 ? quarter_circle_density(t, sigma) : marchenko_pastur_density(t, Q, sigma);
}

// evals ascending (all of the layer's eigenvalues); Q = N/M; M = short side of one slice (Tracy-Widom term).
MPFit fit_marchenko_pastur(const std::vector<double>& evals, double Q, std::int64_t M,
                           const MPFitOptions& options = {});

}  // namespace htsr
