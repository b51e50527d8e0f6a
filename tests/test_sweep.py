"""Sweeps (`mrdino.sweep`, `mrdino demo --seeds/--jobs`, `mrdino sweep-summary`): the grid and its folders, reuse of
finished points and rerun of the others, collection of runs made elsewhere, and the aggregate against mean and sample
sd computed here from hand-written results.json files."""
import json, math, os, statistics, subprocess, sys
from pathlib import Path
import pytest

from mrdino import sweep
from mrdino.cli import main
from mrdino.pipeline import TAB3A_ROWS as ROWS, TAB3A_METRICS as METRICS
from mrdino.sweep import demo_job, record_point, grid_points, point_name, collect_runs, summarize

ROOT = Path(__file__).resolve().parent.parent
SLOW = 'slow' in os.environ.get('MRDINO_TEST_FLAGS', '')

def write_run(folder, seed, values, given=None):
    "A finished run by hand: results.json with `values[row][metric]`, params.json as `mrdino demo` records it."
    given = dict(given or {}, seed=seed)
    folder = Path(folder); folder.mkdir(parents=True)
    (folder / 'results.json').write_text(json.dumps(values))
    record_point(folder, demo_job(folder, **given), given)

def table(base):
    "Every row and metric of Tab. 3a, each a different number derived from `base`."
    return {v: {m: round(base + 0.01 * i + 0.001 * j, 4) for j, m in enumerate(METRICS)} | {'frames': 4} for i, v in enumerate(ROWS)}

def test_aggregate_equals_the_runs(tmp_path):
    # two grid points (world objects, street), three and two seeds; runs in two places, as if copied from two machines
    bases = {('objects', 0): 0.12, ('objects', 1): 0.35, ('objects', 4): 0.27, ('street', 0): 0.05, ('street', 2): 0.11}
    for (world, seed), b in bases.items():
        write_run(tmp_path / ('a' if seed < 2 else 'b') / f'world={world},seed={seed}', seed, table(b), dict(world=world))
    out = tmp_path / 'summary'
    assert main(['sweep-summary', str(tmp_path / 'a'), str(tmp_path / 'b'), '--out', str(out)]) == 0
    s = json.loads((out / 'summary.json').read_text())
    assert [g['label'] for g in s['groups']] == ['world=objects', 'world=street']
    for g in s['groups']:
        world = g['params']['world']
        seeds = sorted(seed for w, seed in bases if w == world)
        assert g['seeds'] == seeds
        for v in ROWS:
            for m in METRICS:
                xs = [table(bases[world, seed])[v][m] for seed in seeds]           # straight from the files written above
                assert math.isclose(g['mean'][v][m], statistics.mean(xs), abs_tol=1e-12)
                assert math.isclose(g['sd'][v][m], statistics.stdev(xs), abs_tol=1e-12)   # sample sd: n - 1
                assert [r['results'][v][m] for r in g['runs']] == xs
    objects = [table(bases['objects', s])['stage2']['f1_50'] for s in (0, 1, 4)]
    md = (out / 'summary.md').read_text()
    cell = f"{100 * statistics.mean(objects):.1f} ± {100 * statistics.stdev(objects):.1f}"
    assert cell in md and 'parked recall, seed 4' in md and 'n − 1' in md
    assert (out / 'summary.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

def test_gain_line_is_stage2_minus_dinosaur_per_seed(tmp_path):
    # F1@50 of DINOSAUR and MR-DINOSAUR chosen by hand: gains 40, 25 and 35 points, mean 33.3, sample sd
    # sqrt(((40-33.3)^2 + (25-33.3)^2 + (35-33.3)^2) / 2) = sqrt(58.3) = 7.6
    for seed, (dino, mr) in enumerate([(0.10, 0.50), (0.20, 0.45), (0.05, 0.40)]):
        t = table(0.3); t['dinosaur']['f1_50'], t['stage2']['f1_50'] = dino, mr
        write_run(tmp_path / f'seed={seed}', seed, t)
    summarize([tmp_path / f'seed={s}' for s in range(3)], tmp_path / 'S')
    md = (tmp_path / 'S' / 'summary.md').read_text()
    assert 'MR-DINOSAUR − DINOSAUR, F1@50: +33.3 ± 7.6 points (per seed +40.0, +25.0, +35.0).' in md, md[-300:]

def test_one_seed_has_no_sd(tmp_path):
    write_run(tmp_path / 'r', 3, table(0.2))
    s = summarize([tmp_path / 'r'], tmp_path / 'S')
    g, = s['groups']
    assert g['sd']['stage2']['f1_50'] is None and g['mean']['stage2']['f1_50'] == table(0.2)['stage2']['f1_50']

def test_same_seed_twice_is_refused(tmp_path):
    write_run(tmp_path / 'x' / 'seed=0', 0, table(0.1)); write_run(tmp_path / 'y' / 'seed=0', 0, table(0.2))
    with pytest.raises(ValueError, match='same parameters and seed 0'): summarize([r['folder'] for r in collect_runs([tmp_path])], tmp_path / 'S')

def test_collect_refuses_results_without_record(tmp_path, capsys):
    write_run(tmp_path / 'ok', 0, table(0.1))
    (tmp_path / 'old').mkdir(); (tmp_path / 'old' / 'results.json').write_text(json.dumps(table(0.1)))
    assert main(['sweep-summary', str(tmp_path), '--out', str(tmp_path / 'S')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / 'old') in err and 'params.json' in err
    assert not (tmp_path / 'S').exists()

def test_grid_and_folder_names():
    pts = grid_points([('world', 'objects,street'), ('stage2_epochs', '1'), ('eval_every', '5,10')], '0,2')
    assert len(pts) == 2 * 2 * 2
    assert [point_name(p) for p in pts[:3]] == ['world=objects,stage2_epochs=1,eval_every=5,seed=0',
                                               'world=objects,stage2_epochs=1,eval_every=5,seed=2',
                                               'world=objects,stage2_epochs=1,eval_every=10,seed=0']
    assert point_name(pts[-1]) == 'world=street,stage2_epochs=1,eval_every=10,seed=2'
    assert grid_points([], '0-4') == [dict(seed=str(s)) for s in range(5)]
    assert grid_points([('world', 'street')], None) is None                      # no list, no seeds: one plain run

@pytest.mark.parametrize('text', ['0-x', 'a', '3-1', '0,,1', '1.5'])
def test_bad_seeds_is_one_line(tmp_path, capsys, text):
    assert main(['demo', '--out', str(tmp_path / 's'), '--seeds', text]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f"--seeds {text!r}" in err and '0-4' in err
    assert not (tmp_path / 's').exists()

def test_bad_value_in_grid_fails_before_any_point(tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(sweep, '_run_point', lambda f, p: ran.append(f) or 0)
    assert main(['demo', '--out', str(tmp_path / 's'), '--seeds', '0-1', '-p', 'eval_every', '5,0']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'point eval_every=0,seed=0' in err and 'eval_every=0' in err
    assert ran == [] and not (tmp_path / 's').exists()

def fake_point(calls):
    "Stands in for the subprocess `mrdino demo`: writes results.json and params.json as a finished run does."
    def run(folder, point):
        calls.append(folder.name)
        given = {k: sweep.parse_value(v) for k, v in point.items()}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / 'results.json').write_text(json.dumps(table(0.1 + given['seed'] / 10)))
        record_point(folder, demo_job(folder, **given), given)
        return 0
    return run

def test_finished_points_are_reused_and_unfinished_rerun(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sweep, '_run_point', fake_point(calls))
    argv = ['demo', '--out', str(tmp_path / 's'), '--seeds', '0-2', '--jobs', '2', '-p', 'baseline_steps', '7']
    assert main(argv) == 0
    assert sorted(calls) == [f'baseline_steps=7,seed={s}' for s in range(3)]
    lines = capsys.readouterr().out.splitlines()
    assert sum(': done in ' in l for l in lines) == 3                            # a progress line per finished point
    s = json.loads((tmp_path / 's' / 'summary.json').read_text())
    assert s['groups'][0]['seeds'] == [0, 1, 2] and s['groups'][0]['params']['threads'] == 1   # one torch thread per run
    # a killed sweep: seed 1 was running (its record is removed when a run starts), seed 2 has an old record
    (tmp_path / 's' / 'baseline_steps=7,seed=1' / 'params.json').unlink()
    rec = tmp_path / 's' / 'baseline_steps=7,seed=2' / 'params.json'
    old = json.loads(rec.read_text()); old['params']['baseline_steps'] = 8; rec.write_text(json.dumps(old))
    calls.clear()
    assert main(argv) == 0
    assert sorted(calls) == ['baseline_steps=7,seed=1', 'baseline_steps=7,seed=2']
    assert 'point(s), 1 finished, 2 to run' in capsys.readouterr().out
    calls.clear(); assert main(argv) == 0 and calls == []                       # everything finished: nothing runs

def test_failed_point_is_reported_and_others_finish(tmp_path, monkeypatch, capsys):
    calls, ok = [], fake_point([])
    def run(folder, point):
        calls.append(folder.name)
        if point['seed'] == '1':
            folder.mkdir(parents=True); (folder / 'sweep.log').write_text('mrdino demo: error: disk full\n'); return 2
        return ok(folder, point)
    monkeypatch.setattr(sweep, '_run_point', run)
    assert main(['demo', '--out', str(tmp_path / 's'), '--seeds', '0-2']) == 1
    out = capsys.readouterr().out
    assert 'seed=1: FAILED (exit 2)' in out and 'disk full' in out and 'run the same command again' in out
    assert len(calls) == 3 and not (tmp_path / 's' / 'summary.json').exists()

def test_jobs_without_sweep_is_refused(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'd'), '--jobs', '2']) == 2
    assert '--jobs' in capsys.readouterr().err and not (tmp_path / 'd').exists()

@pytest.mark.skipif(not SLOW, reason='two real main jobs: set MRDINO_TEST_FLAGS=slow')
def test_two_real_points_side_by_side(tmp_path):
    "Two tiny main jobs with --jobs 2: each in its own process on one thread; then the summary of both."
    tiny = ['-p', 'data', 'synthetic:2', '-p', 'eval_data', 'synthetic-eval:1', '-p', 'baseline_steps', '30',
            '-p', 'stage1_epochs', '1', '-p', 'stage2_epochs', '1', '-p', 'eval_every', '30']
    cmd = [sys.executable, '-m', 'mrdino.cli', 'demo', '--out', str(tmp_path / 's'), '--seeds', '0-1', '--jobs', '2', *tiny]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                       env={**os.environ, 'PYTHONPATH': str(ROOT)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for s in (0, 1):
        run = tmp_path / 's' / f'data=synthetic_2,eval_data=synthetic-eval_1,baseline_steps=30,stage1_epochs=1,stage2_epochs=1,eval_every=30,seed={s}'
        assert json.loads((run / 'params.json').read_text())['params']['threads'] == 1
        assert list(json.loads((run / 'results.json').read_text())) == list(ROWS)
    g, = json.loads((tmp_path / 's' / 'summary.json').read_text())['groups']
    assert g['seeds'] == [0, 1]
