"""The keys (and their order) of every dict htsr._core returns, pinned: Python reads these keys by name, so a
renamed, dropped or reordered key must fail here, not turn into a missing column (bindings/results.cpp)."""
import numpy as np
import pytest
from htsr import _core as core

W = np.random.default_rng(0).standard_normal((60, 40))
EVALS = np.sort(np.random.default_rng(1).pareto(1.5, 300) + 1.0)

EXPECTED = {
    "analyze_default": (
        lambda: core.analyze_layers([([W], 1.0)])[0],
        [
        'error', 'N', 'M', 'num_evals', 'sv_max', 'sv_min', 'lambda_max', 'rank_loss', 'svd_fallback',
        'noise_floor', 'on_cpu_fallback', 'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes',
        'num_fitted', 'status', 'warning', 'fit_message', 'Lambda', 'num_fingers', 'raw_alpha', 'norm',
        'log_norm', 'spectral_norm', 'log_spectral_norm', 'alpha_weighted', 'log_alpha_norm', 'stable_rank',
        'matrix_rank', 'entropy', 'weak_rank_loss', 'quality_message']),
    "analyze_all": (
        lambda: core.analyze_layers([([W], 1.0)], return_evals=True, candidates=True, mp_fit=True,
                                randomize=core.MersenneTwister(1), alpha_ci=(0.05, 0.95), bootstrap=20, seed=3,
                                fit_quality={"gof": True, "gof_resamples": 10, "compare_fits": True, "farms": True})[0],
        [
        'error', 'N', 'M', 'num_evals', 'sv_max', 'sv_min', 'lambda_max', 'rank_loss', 'svd_fallback',
        'noise_floor', 'on_cpu_fallback', 'evals', 'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes',
        'num_fitted', 'status', 'warning', 'fit_message', 'Lambda', 'num_fingers', 'raw_alpha', 'xmins',
        'alphas', 'Ds', 'norm', 'log_norm', 'spectral_norm', 'log_spectral_norm', 'alpha_weighted',
        'log_alpha_norm', 'stable_rank', 'matrix_rank', 'entropy', 'weak_rank_loss', 'num_spikes',
        'sigma_mp', 'mp_softrank', 'W_scale', 'bulk_max', 'bulk_min', 'mp_message', 'alpha_ci_lo',
        'alpha_ci_hi', 'alpha_ci_fitted', 'max_rand_eval', 'rand_distance', 'ww_softrank', 'ww_maxdist',
        'rand_num_spikes', 'rand_sigma_mp', 'rand_mp_softrank', 'rand_W_scale', 'rand_bulk_max',
        'rand_bulk_min', 'rand_mp_message', 'num_traps', 'rand_evals', 'pl_pvalue', 'gof_fitted',
        'R_exponential', 'p_exponential', 'R_lognormal', 'p_lognormal', 'R_stretched_exponential',
        'p_stretched_exponential', 'R_truncated_power_law', 'p_truncated_power_law', 'fit_quality',
        'alpha_farms', 'farms_submatrices', 'warning_ci', 'quality_message']),
    "analyze_failed": (
        lambda: core.analyze_layers([([np.zeros((5, 4))], 1.0)], mp_fit=True, alpha_ci=(0.05, 0.95))[0],
        [
        'error', 'N', 'M', 'num_evals', 'sv_max', 'sv_min', 'lambda_max', 'rank_loss', 'svd_fallback',
        'noise_floor', 'on_cpu_fallback']),
    "spectra": (
        lambda: core.spectra([([W], 1.0)])[0],
        [
        'error', 'N', 'M', 'num_evals', 'sv_max', 'sv_min', 'lambda_max', 'rank_loss', 'svd_fallback',
        'noise_floor', 'on_cpu_fallback', 'evals']),
    "fit_power_law": (
        lambda: core.fit_power_law(EVALS),
        [
        'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes', 'num_fitted', 'status', 'warning',
        'fit_message', 'Lambda', 'num_fingers', 'raw_alpha']),
    "fit_power_law_candidates": (
        lambda: core.fit_power_law(EVALS, candidates=True),
        [
        'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes', 'num_fitted', 'status', 'warning',
        'fit_message', 'Lambda', 'num_fingers', 'raw_alpha', 'xmins', 'alphas', 'Ds']),
    "fit_power_law_tpl": (
        lambda: core.fit_power_law(EVALS, fit="TPL"),
        [
        'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes', 'num_fitted', 'status', 'warning',
        'fit_message', 'Lambda', 'num_fingers', 'raw_alpha']),
    "layer_metrics": (
        lambda: core.layer_metrics(EVALS, 2.0, 60),
        [
        'norm', 'log_norm', 'spectral_norm', 'log_spectral_norm', 'alpha_weighted', 'log_alpha_norm',
        'stable_rank', 'matrix_rank', 'entropy', 'weak_rank_loss']),
    "fit_marchenko_pastur": (
        lambda: core.fit_marchenko_pastur(EVALS, 1.5, 300),
        [
        'num_spikes', 'sigma_mp', 'mp_softrank', 'W_scale', 'bulk_max', 'bulk_min', 'mp_message', 'status',
        'cutoff']),
    "fit_marchenko_pastur_grid": (
        lambda: core.fit_marchenko_pastur(EVALS, 1.5, 300, keep_grid=True),
        [
        'num_spikes', 'sigma_mp', 'mp_softrank', 'W_scale', 'bulk_max', 'bulk_min', 'mp_message', 'status',
        'cutoff', 'grid', 'objective']),
    "bootstrap_alpha": (
        lambda: core.bootstrap_alpha(EVALS, bootstrap=10, seed=1),
        [
        'alpha', 'xmin', 'xmax', 'D', 'sigma', 'num_pl_spikes', 'num_fitted', 'status', 'warning',
        'fit_message', 'Lambda', 'num_fingers', 'raw_alpha', 'alpha_ci_lo', 'alpha_ci_hi', 'alpha_ci_fitted']),
    "goodness_of_fit": (
        lambda: core.goodness_of_fit(EVALS, resamples=5, seed=1),
        [
        'alpha', 'xmin', 'D', 'status', 'fit_message', 'pl_pvalue', 'gof_fitted', 'gof_message']),
    "compare_fits": (
        lambda: core.compare_fits(EVALS),
        [
        'alpha', 'xmin', 'D', 'status', 'fit_message', 'R_exponential', 'p_exponential',
        'parameters_exponential', 'converged_exponential', 'R_lognormal', 'p_lognormal',
        'parameters_lognormal', 'converged_lognormal', 'R_stretched_exponential', 'p_stretched_exponential',
        'parameters_stretched_exponential', 'converged_stretched_exponential', 'R_truncated_power_law',
        'p_truncated_power_law', 'parameters_truncated_power_law', 'converged_truncated_power_law',
        'compared_alpha', 'compare_message']),
    "compare_tail": (
        lambda: core.compare_tail(EVALS[-50:]),
        [
        'R_exponential', 'p_exponential', 'parameters_exponential', 'converged_exponential', 'R_lognormal',
        'p_lognormal', 'parameters_lognormal', 'converged_lognormal', 'R_stretched_exponential',
        'p_stretched_exponential', 'parameters_stretched_exponential', 'converged_stretched_exponential',
        'R_truncated_power_law', 'p_truncated_power_law', 'parameters_truncated_power_law',
        'converged_truncated_power_law', 'compared_alpha', 'compare_message']),
    "fit_tpl_at": (
        lambda: core.fit_tpl_at(EVALS[-50:]),
        [
        'alpha', 'Lambda', 'neg_loglik', 'valid', 'evaluations']),
    "detx_constraint": (
        lambda: core.detx_constraint(EVALS),
        [
        'detX_num', 'detX_idx', 'detX_val', 'detX_val_unrescaled']),
    "eigenvector_metrics": (
        lambda: core.eigenvector_metrics([W], 1.0, 5),
        [
        'bulk_mean_vec_entropy', 'bulk_var_vec_entropy', 'tail_mean_vec_entropy', 'tail_var_vec_entropy',
        'bulk_mean_loc_ratio', 'bulk_var_loc_ratio', 'tail_mean_loc_ratio', 'tail_var_loc_ratio',
        'bulk_mean_part_ratio', 'bulk_var_part_ratio', 'tail_mean_part_ratio', 'tail_var_part_ratio']),
}


@pytest.mark.parametrize("call", sorted(EXPECTED))
def test_result_keys_are_pinned(call):
    make, expected = EXPECTED[call]
    assert list(make()) == expected
