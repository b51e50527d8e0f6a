"""The main job's default world ('objects'): its pseudo-labels are good enough to teach, the world parameter picks
videos and stand-in, and on the full main job stage 2 keeps helping by a margin derived from 8 runs (slow: one
full main job, about 5 CPU-minutes; run with MRDINO_TEST_FLAGS=slow)."""
import os
import pytest

SLOW = 'slow' in os.environ.get('MRDINO_TEST_FLAGS', '').split()

def test_pseudolabels_of_the_objects_world_teach(one_thread):
    # DIS flow, the reference's instance settings (what the main job uses), still frames of two training videos,
    # against the objects that move in each frame. Measured per video on seeds 0-5 (every 3rd still frame):
    # 77.6, 64.8, 66.7, 67.5, 87.3, 85.4; the bar for labels that can teach is 60.
    from mrdino.worlds import make_world_dataset
    from mrdino.instances import InstanceConfig
    from mrdino.pseudolabels import pseudolabel_quality
    r = pseudolabel_quality(make_world_dataset(2, 0, 'objects'), 'dis', InstanceConfig(), every=3)
    assert r['frames'] >= 20
    assert r['moving']['f1_50'] >= 0.60, r['moving']

# F1@50 (%) of the full main job (`mrdino demo -p seed S`, world 'objects', defaults) measured on a 2-core box:
# (DINOSAUR, + stage 1, + stage 2). The job runs the synthetic preset on one torch thread; nbs/results.ipynb and the README
# quote seeds 0-2 (seeds 3 and 4 were run after that setting was chosen, as a check). The same seeds 0-2 on two
# threads, the job's setting before, end elsewhere (summation order changes every step of these small trainings):
# eight runs, the spread a margin must allow.
MEASURED = {(1, 0): (16.9, 21.3, 55.5), (1, 1): (1.5, 12.7, 39.7), (1, 2): (15.1, 8.9, 36.1),   # (threads, seed)
            (1, 3): (8.8, 19.6, 49.0), (1, 4): (1.5, 9.8, 34.8),
            (2, 0): (12.5, 14.8, 39.3), (2, 1): (0.9, 9.9, 30.9), (2, 2): (11.8, 9.5, 26.6)}

def margin(a, b):
    "Smallest gain of row b over row a that still counts as 'helping': mean - 3 sd over the runs, at least 3 points."
    import statistics
    g = [r[b] - r[a] for r in MEASURED.values()]
    return max(3.0, statistics.mean(g) - 3 * statistics.stdev(g))

ROW = dict(dinosaur=0, stage1=1, stage2=2)
# stage 2 over DINOSAUR (gains 38.6, 38.2, 21.0, 40.2, 33.3, 26.8, 30.0, 14.8: mean 30.4 - 3 sd 27.2 = 3.1) and over
# stage 1 (34.2, 27.0, 27.2, 29.4, 25.0, 24.5, 21.0, 17.1: mean 25.7 - 3 sd 15.5 = 10.1). Stage 1 alone is not
# asserted: its gain changes sign across runs (+4.4, +11.2, -6.2, +10.8, +8.3, +2.3, +9.0, -2.3).
PAIRS = [('dinosaur', 'stage2'), ('stage1', 'stage2')]

def test_margins_follow_from_the_seeds():
    assert round(margin(ROW['dinosaur'], ROW['stage2']), 1) == 3.1
    assert round(margin(ROW['stage1'], ROW['stage2']), 1) == 10.1

@pytest.mark.skipif(not SLOW, reason='a full main job: set MRDINO_TEST_FLAGS=slow')
def test_each_stage_helps_on_the_objects_world(tmp_path, one_thread):
    from mrdino.pipeline import MainJob
    res = MainJob(out_dir=str(tmp_path), progress=False).evaluate()
    f1 = {k: 100 * v['f1_50'] for k, v in res.items()}
    for a, b in PAIRS:
        assert f1[b] - f1[a] >= margin(ROW[a], ROW[b]), (a, b, f1)

def test_world_parameter_picks_videos_and_stand_in(tmp_path):
    from mrdino.pipeline import MainJob
    obj = MainJob(out_dir=str(tmp_path / 'o'), data='synthetic:1', eval_data='synthetic-eval:1')
    st = MainJob(out_dir=str(tmp_path / 's'), data='synthetic:1', eval_data='synthetic-eval:1', world='street')
    assert obj.world == 'objects'                                                   # the default
    assert (obj.videos()[0].name, obj.eval_videos()[0].name) == ('objects_000', 'objects_1000')
    assert (st.videos()[0].name, st.eval_videos()[0].name) == ('street_000', 'street_1000')
    assert (obj.dcfg.encoder_weights, st.dcfg.encoder_weights) == ('filterbank', 'standin')
    assert 'stand-in' in obj.encoder().description and 'stand-in' in st.encoder().description
