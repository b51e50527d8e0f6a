"""The package's shape: mrdino modules import each other in one direction (pipeline order), never in a circle.

Imports inside functions count too: a function-local import hides a loop from readers but not from this test.
"""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / 'mrdino'

def mrdino_imports(path:Path)->set:
    "Names of the mrdino modules that a module imports anywhere (top level or inside functions)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:                                           # from .x import y / from . import x
                out |= {node.module.split('.')[0]} if node.module else {a.name for a in node.names}
            elif node.module and node.module.split('.')[0] == 'mrdino':
                parts = node.module.split('.')
                out |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('mrdino.')}
    return out - {path.stem}

def import_graph()->dict:
    mods = {p.stem: p for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    return {m: mrdino_imports(p) & set(mods) for m, p in mods.items()}

def find_cycle(graph:dict)->list:
    "One import cycle as a list of modules (first == last), or [] when the graph has none (depth-first search)."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'done'; stack.pop(); return []
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return []

def test_find_cycle_sees_a_hidden_loop():
    "The checker itself: a loop through three modules is found, a chain is not."
    test_graph = dict(a={'b'}, b={'c'}, c={'a'}, d=set())
    assert find_cycle(test_graph)[0] == find_cycle(test_graph)[-1] and set(find_cycle(test_graph)) == {'a', 'b', 'c'}
    assert find_cycle(dict(a={'b'}, b={'c'}, c=set())) == []

def test_function_local_imports_are_seen(tmp_path):
    f = tmp_path / 'x.py'
    f.write_text("import os\nfrom .data import a\ndef g():\n    from mrdino.stage2 import b\n    import mrdino.flow\n")
    assert mrdino_imports(f) == {'data', 'stage2', 'flow'}

def test_no_import_circle_among_mrdino_modules():
    graph = import_graph()
    assert {'data', 'dinosaur', 'stage2', 'predict', 'cli'} <= set(graph)
    cycle = find_cycle(graph)
    assert not cycle, f"import circle: {' -> '.join(cycle)}"
