"""Prefix-shared evaluation: models whose leading layers are identical compute those layers once per batch.

Each segment-k model of a zoo shares segments 1..k-1 with its parent; a user's fine-tuned copies of one network
share whatever they did not train. Sharing is found from the models themselves, never from their names: a
Keras functional model is cut at every *articulation tensor* (a tensor that is, at that point of the graph, the
only one later layers need), and each cut gets a cumulative hash of everything before it — each layer's class,
its configuration without its name (the dtype policy included), its weights and its wiring. Two models whose
hashes agree at a cut compute the same tensor there from the same input, so one of them computes it for both.

The models are arranged in a trie of cuts; a path of the trie with one child and no model ending on it becomes one
Keras sub-model (built from the representative model's own tensors, so it runs the very same layers). Each
batch walks the trie depth first, keeping only the activations of the current path.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from codecbench.store.inputs import INPUT_BUDGET_BYTES


@dataclasses.dataclass
class Cut:
    """A tensor through which every later layer depends on the input, and the hash of the graph up to it."""
    tensor: object
    digest: str
    #: graph nodes before it (topological order)
    position: int


def _node_of(tensor):
    op, node_index, _ = tensor._keras_history
    return op._inbound_nodes[node_index]


def _topological_nodes(model) -> list:
    """The model's nodes, each after the nodes producing its inputs (a deterministic depth-first post-order)."""
    order, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for t in node.input_tensors:
            visit(_node_of(t))
        order.append(node)

    for out in model.outputs:
        visit(_node_of(out))
    return order


def _layer_digest(layer) -> bytes:
    h = hashlib.sha256(type(layer).__qualname__.encode())
    config = dict(layer.get_config())
    config.pop("name", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for w in layer.weights:
        value = np.ascontiguousarray(np.asarray(w.numpy()))
        h.update(str((value.dtype.str, value.shape)).encode())
        h.update(value.tobytes())
    return h.digest()


def cuts(model) -> list[Cut] | None:
    """The articulation tensors of a single-input, single-output Keras functional model, in order, with
    cumulative hashes; the last is the model's output. None if the model is of another form."""
    if len(getattr(model, "inputs", None) or []) != 1 or len(getattr(model, "outputs", None) or []) != 1:
        return None
    try:
        nodes = _topological_nodes(model)
    except (AttributeError, IndexError, TypeError):  # a subclassed model: no graph to cut
        return None
    index = {id(n): i for i, n in enumerate(nodes)}
    uses: dict[int, int] = {}
    for node in nodes:
        for t in node.input_tensors:
            uses[id(t)] = uses.get(id(t), 0) + 1
    uses[id(model.outputs[0])] = uses.get(id(model.outputs[0]), 0) + 1
    layer_digests: dict[int, bytes] = {}
    live: dict[int, object] = {}
    h = hashlib.sha256()
    found = []
    for i, node in enumerate(nodes):
        layer = node.operation
        if id(layer) not in layer_digests:
            layer_digests[id(layer)] = _layer_digest(layer)
        h.update(layer_digests[id(layer)])
        # wiring: which earlier node (relative position) and which of its outputs feeds each input
        wiring = [(i - index[id(_node_of(t))], t._keras_history[2]) for t in node.input_tensors]
        h.update(repr(wiring).encode())
        for t in node.input_tensors:
            uses[id(t)] -= 1
            if not uses[id(t)]:
                live.pop(id(t), None)
        for t in node.output_tensors:
            if uses.get(id(t)):
                live[id(t)] = t
        if len(live) == 1 and i:  # (not the input itself: nothing to compute there)
            (tensor,) = live.values()
            found.append(Cut(tensor, h.hexdigest(), i + 1))
    if not found or found[-1].tensor is not model.outputs[0]:
        return None
    return found


@dataclasses.dataclass
class _Node:
    digest: str
    depth: int = -1           # index of this cut in the chains of the models that pass through it (root: -1)
    position: int = 0         # graph nodes before it
    model: object = None      # a model whose chain passes through this node (the one whose layers run the edge)
    children: dict = dataclasses.field(default_factory=dict)
    ends: list = dataclasses.field(default_factory=list)  # keys of the models whose output this is
    run: object = None        # the sub-model from the parent's cut to this one


class SharedPrefixPredictor:
    """Predicts several Keras models on the same batches, computing each shared prefix once.

    ``models``: ``{key: keras.Model}``. Models that cannot be cut (not functional, several inputs) are run whole.
    """

    def __init__(self, models: dict):
        from codecbench.core.backend import keras

        self.keys = list(models)
        self.models = dict(models)
        self.root = _Node("")
        self.whole: dict = {}
        self.chains: dict = {}
        for key, model in models.items():
            chain = self.chains[key] = cuts(model)
            if chain is None:
                self.whole[key] = model
                continue
            node = self.root
            for depth, cut in enumerate(chain):
                child = node.children.get(cut.digest)
                if child is None:
                    child = node.children[cut.digest] = _Node(cut.digest, depth, cut.position, key)
                node = child
            node.ends.append(key)
        self._compress(self.root)
        self._build(self.root, keras)

    def _compress(self, node: _Node) -> None:
        for digest, child in list(node.children.items()):
            # a single-child chain on which no model ends is one sub-model: every model that reaches its end
            # passed through all of it, so the end's model has every tensor of it
            while len(child.children) == 1 and not child.ends:
                (child,) = child.children.values()
            node.children[digest] = child
            self._compress(child)

    def _build(self, node: _Node, keras) -> None:
        for child in node.children.values():
            chain = self.chains[child.model]
            inputs = self.models[child.model].inputs[0] if node.depth < 0 else chain[node.depth].tensor
            child.run = keras.Model(inputs=inputs, outputs=chain[child.depth].tensor)
            self._build(child, keras)

    def edges(self):
        """``(parent, child)`` pairs of the compressed trie, depth first."""
        def walk(node):
            for child in node.children.values():
                yield node, child
                yield from walk(child)
        return list(walk(self.root))

    @property
    def calls_per_batch(self) -> int:
        """Sub-model calls per batch (the unshared path makes one per model)."""
        return len(self.edges()) + len(self.whole)

    def predict(self, x: np.ndarray, *, batch_size: int | None = None,
                input_budget_bytes: int | None = None) -> dict:
        """``{key: outputs (N, ...)}`` of every model on ``x`` (N, ...), in batches within the input budget."""
        if batch_size is None:

            per_clip = int(np.prod(x.shape[1:])) * 4 if len(x) else 1
            batch_size = max(1, (input_budget_bytes or INPUT_BUDGET_BYTES) // per_clip)
        parts: dict = {k: [] for k in self.keys}
        for start in range(0, len(x), batch_size):
            for key, out in self.predict_batch(x[start:start + batch_size]).items():
                parts[key].append(out)
        return {k: np.concatenate(v) for k, v in parts.items() if v}

    def predict_batch(self, batch: np.ndarray) -> dict:
        """``{key: outputs}`` of one batch; only the activations of the current trie path are kept."""
        from codecbench.core.backend import quiet_retracing

        out: dict = {}

        def walk(node, activation):
            for child in node.children.values():
                value = np.asarray(child.run.predict_on_batch(activation))
                for key in child.ends:
                    out[key] = value
                walk(child, value)

        with quiet_retracing():  # each sub-model traces its predict function once
            walk(self.root, batch)
            for key, model in self.whole.items():
                out[key] = np.asarray(model.predict_on_batch(batch))
        return out

    def flops(self, input_shape) -> dict:
        """Multiply-add FLOPs (x2) per example of ``input_shape`` (no batch axis) for the unshared and the shared
        path, from the convolution and dense layers' shapes."""
        per_node = {key: _node_flops(model, input_shape) for key, model in self.models.items()}
        unshared = sum(sum(v) for v in per_node.values())
        shared = sum(sum(per_node[key]) for key in self.whole)
        for parent, child in self.edges():
            shared += sum(per_node[child.model][parent.position:child.position])
        return {"unshared": unshared, "shared": shared, "ratio": unshared / shared if shared else float("nan")}


def _node_flops(model, input_shape) -> list[float]:
    """FLOPs of each node of ``model`` (topological order) for one example of ``input_shape``."""
    from codecbench.core.backend import keras

    concrete = keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))
    flops = []
    for node in _topological_nodes(concrete):
        layer, out = node.operation, node.output_tensors[0]
        size = float(np.prod([d for d in out.shape[1:] if d is not None]))
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, keras.layers.Dense) and kernel is not None:
            flops.append(2.0 * size * kernel.shape[0])
        elif kernel is not None and len(kernel.shape) >= 3:  # convolutions: kernel (..., in / groups, out)
            flops.append(2.0 * size * float(np.prod(kernel.shape[:-1])))
        else:
            flops.append(0.0)
    return flops
