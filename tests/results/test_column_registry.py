"""The column registry (htsr.results.columns) is the one owner of the table's columns: every key the core
returns is registered (as a column or as a core field the row builder reads), every registered column appears
in some table, and tables, failed rows and the facade's columns follow it."""
import numpy as np
import pytest

import htsr
from htsr import analysis
from htsr.results import columns
from htsr.results.columns import BY_NAME, CORE_FIELDS, NO_VALUE, OPTIONAL, REGISTRY

# Every option that adds columns, in the combinations the options table allows (fit='TPL' excludes the
# power-law tests and clip_xmax; intra excludes randomize, vectors and inverse).
EVERY_OPTION = dict(fix_fingers="clip_xmax", mp_fit=True, randomize=True, seed=3, alpha_ci=True, bootstrap=20,
                    gof=True, gof_resamples=20, compare_fits=True, farms=True, detX=True, vectors=True,
                    spectral_gap=True, return_esd=True, pool=False)
OTHER_OPTIONS = [dict(fit="TPL"), dict(intra=True)]


def plain_model(seed=0):
    rng = np.random.default_rng(seed)
    model = {f"fc{i}.weight": rng.standard_normal((80 + 10 * i, 40)) for i in range(3)}
    model["conv.weight"] = rng.standard_normal((24, 12, 3, 3))
    model["bad.weight"] = np.full((40, 20), np.nan)  # a failed row
    return model


def moe_model():
    rng = np.random.default_rng(1)
    model = {"model.embed_tokens.weight": rng.standard_normal((100, 32)),
             "model.layers.0.mlp.gate.weight": rng.standard_normal((4, 32))}
    for e in range(4):
        model[f"model.layers.0.mlp.experts.{e}.up_proj.weight"] = rng.standard_normal((64, 32))
    return model


def test_every_key_the_core_returns_is_registered(monkeypatch):
    seen = set()
    real = analysis.layer_row

    def recording(plan, result, opts):
        seen.update(result)
        return real(plan, result, opts)

    monkeypatch.setattr(analysis, "layer_row", recording)
    for options in [EVERY_OPTION] + OTHER_OPTIONS:
        htsr.analyze(plain_model(), **options)
    assert seen, "the core returned nothing"
    unknown = sorted(seen - set(BY_NAME) - set(CORE_FIELDS))
    assert not unknown, f"core keys missing from the column registry: {unknown}"


def test_every_registered_column_appears_in_some_table():
    tables = [htsr.analyze(plain_model(), **options) for options in [EVERY_OPTION] + OTHER_OPTIONS]
    tables.append(htsr.analyze(moe_model()))
    tables.append(htsr.analyze(plain_model(2), base_model=plain_model(1)))  # deltas: the component column
    tables.append(htsr.analyze_many({"a": plain_model(3)}))  # the model column
    seen = set().union(*(t.columns for t in tables))
    never = [c.name for c in REGISTRY if c.name not in seen]
    assert not never, f"registered columns no analysis produces: {never}"


def test_table_columns_follow_the_registry_order():
    table = htsr.analyze(plain_model(), **EVERY_OPTION)
    order = [c.name for c in REGISTRY]
    assert list(table.columns) == sorted(table.columns, key=order.index)
    for col in table.columns:
        if BY_NAME[col].dtype == columns.INT:
            assert str(table[col].dtype) in ("int64", "Int64"), col


def test_failed_rows_carry_the_registered_failed_values():
    table = htsr.analyze(plain_model(), **EVERY_OPTION)
    failed = table[table["longname"] == "bad"].iloc[0]
    assert failed["status"] == "failed" and "NaN" in failed["message"]
    with_value = [c for c in REGISTRY if c.failed is not NO_VALUE and c.name in table]
    assert {c.section for c in with_value} >= {columns.DEFAULT, OPTIONAL}
    for col in with_value:
        if isinstance(col.failed, float) and np.isnan(col.failed):
            assert np.isnan(failed[col.name]), col.name
        else:
            assert failed[col.name] == col.failed, col.name


def test_unasked_columns_are_left_out():
    table = htsr.analyze(plain_model())
    assert not set(table.columns) & set(columns.names(OPTIONAL)), "optional columns without their option"
    assert list(table.columns) == htsr.results.COLUMNS


@pytest.mark.parametrize("options,expected", [
    (dict(mp_fit=True), ["num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min"]),
    (dict(fit="TPL"), ["Lambda"]), (dict(fix_fingers="clip_xmax"), ["num_fingers", "raw_alpha"]),
    (dict(intra=True), ["Xflag"]),
    (dict(detX=True), ["detX_num", "num_ERG_spikes", "ERG_gap", "detX_val", "detX_val_unrescaled"])])
def test_facade_reports_the_columns_its_options_ask_for(options, expected):
    watcher = htsr.WeightWatcher(plain_model())
    details = watcher.analyze(**options)
    assert set(expected) <= set(details.columns)
    assert not set(details.columns) - set(expected) - set(htsr.facade.REFERENCE_COLUMNS) - {"slice_id"}
