"""The notebook widgets (issue 24): FlowExplorer drawn at display size in a fixed layout; ThresholdExplorer's panel
captions, its note of rounded starting values, and instance colours that stay while the instance stays."""
import numpy as np
from mrdino.flow import FlowExplorer
from mrdino.pseudolabels import InstanceConfig, ThresholdExplorer
from mrdino.worlds import make_street_video
from test_flow import pan_frames

def test_flow_explorer_is_drawn_at_display_size():
    w = FlowExplorer(np.stack(pan_frames(3, 2)), backends=('dis',), tau_static=1.0)   # 96×160 frames
    assert w.scale == 2 and w.image.shape == (2 * 96 * 2, 160 * 2, 3)
    assert w.view.layout.width == f'{w.image.shape[1]}px'            # shown 1:1: the browser does not rescale it
    inner = w.image[40:340, 60:260]                                  # away from the corner boxes and their numbers
    np.testing.assert_array_equal(inner[0::2, 0::2], inner[1::2, 1::2])   # whole 2×2 blocks, no interpolation

def test_flow_explorer_controls_have_a_fixed_width():
    w = FlowExplorer(np.stack(pan_frames(3, 2)), backends=('dis',), tau_static=1.0)
    ctrl = w.widget.children[0]
    assert ctrl.layout.width and ctrl.layout.width.endswith('px')     # the verdict's length cannot move the image
    assert w.label.layout.width and w.label.layout.width.endswith('px')

def _squares(h=80, w=100):
    "An image and a flow with two moving squares: a small one at the top left (id 1) and a large one below (id 2)."
    flow = np.zeros((h, w, 2), np.float32)
    flow[5:15, 5:15] = (5, 0)          # 100 px
    flow[40:70, 40:80] = (0, 5)        # 1200 px
    return np.full((h, w, 3), 128, np.uint8), flow

_CFG = dict(tau_fg=2.5, tau_grad=60.0, erosion_radius=1, min_region=50, fg_decimals=None)

def test_instance_keeps_its_colour_when_its_id_changes():
    img, flow = _squares()
    ex = ThresholdExplorer([(img, flow)], cfg=InstanceConfig(**_CFG))
    assert ex.n_instances == 2 and ex.instances[55, 60] == 2 and ex.instances[10, 10] == 1
    big = ex.overlay[55, 60].copy()
    ex.set(min_region=500)                                           # the small square goes: the large one becomes id 1
    assert ex.n_instances == 1 and ex.instances[55, 60] == 1
    np.testing.assert_array_equal(ex.overlay[55, 60], big)           # same instance, same colour
    np.testing.assert_array_equal(ex.overlay[10, 10], img[10, 10])   # the dropped one is no longer coloured
    ex.set(min_region=50)                                            # the small square comes back, overlapping nothing
    np.testing.assert_array_equal(ex.overlay[55, 60], big)
    assert not np.array_equal(ex.overlay[10, 10], big)               # a new instance gets a colour of its own

def test_note_lists_only_changes_that_show():
    img, flow = _squares()
    on_grid = ThresholdExplorer([(img, flow)], cfg=InstanceConfig(**{**_CFG, 'tau_grad': 6.702})).widget()
    assert on_grid.children[1].value == ''                           # 6.702 → 6.7 reads "6.7 → 6.7": not a change
    w = ThresholdExplorer([(img, flow)], cfg=InstanceConfig(**{**_CFG, 'tau_grad': 6.702, 'tau_fg': 0.8378})).widget()
    assert w.children[1].value == 'starting values rounded to the slider steps: tau_fg 0.838 → 0.84'

def test_panels_have_captions():
    img, flow = _squares()
    alone = ThresholdExplorer([(img, flow)], cfg=InstanceConfig(**_CFG)).widget()
    assert 'pseudo-labels' in alone.captions.value and 'ground truth' not in alone.captions.value   # one panel
    v = make_street_video(seed=1, n_frames=3)
    w = ThresholdExplorer(v, index=0, cfg=InstanceConfig().scaled(126 / 376)).widget()
    assert 'pseudo-labels' in w.captions.value and 'ground truth: moving objects' in w.captions.value
    assert 'ground truth: moving objects' in w._repr_mimebundle_()['text/html']   # the static snapshot has them too

def test_snapshot_is_written_beside_the_widget_and_renewed():
    # a notebook saved and reopened without its kernel has no widget model: the output beside the widget's holds the view
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output
    InteractiveShell.instance()
    w = FlowExplorer(np.stack(pan_frames(3, 2)), backends=('dis',), tau_static=1.0)
    with capture_output() as cap:
        display(w)
        w.frame.value = 3                                            # 3 → 4 pans by 3 px: the verdict changes
    first, beside, renewed = cap.outputs
    assert 'application/vnd.jupyter.widget-view+json' in first.data and 'quasi-static' in beside.data['text/html']
    assert renewed.update and renewed.transient == beside.transient  # the same output, renewed in place
    assert 'camera moving' in renewed.data['text/html'] and 'data:image/png' in renewed.data['text/html']
