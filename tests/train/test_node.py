import pytest
import torch

from fivefold.data import load_embedded_cora
from fivefold.graphs import GCN, normalize_features
from fivefold.train import fit_node_classifier


@pytest.mark.parametrize("selection", ["val_acc", "acc_and_loss"])
def test_selection_restores_the_chosen_epoch(selection):
    graph = normalize_features(load_embedded_cora())
    torch.manual_seed(0)
    model = GCN(graph.num_features, 7)
    result = fit_node_classifier(model, graph, epochs=30, patience=5, selection=selection, progress=False)
    history = result["history"]
    best = history[result["best_epoch"] - 1]
    if selection == "val_acc":
        assert best["val_acc"] == max(row["val_acc"] for row in history)
    else:
        earlier = history[: result["best_epoch"]]
        assert best["val_acc"] >= max(r["val_acc"] for r in earlier) - 1e-12
        assert best["val_loss"] <= min(r["val_loss"] for r in earlier) + 1e-12
    model.eval()
    with torch.no_grad():
        logits = model(graph.x, graph)
    test_acc = float((logits[graph.test_mask].argmax(-1) == graph.y[graph.test_mask]).float().mean())
    assert test_acc == pytest.approx(result["test_acc"])
    with pytest.raises(ValueError, match="selection"):
        fit_node_classifier(model, graph, epochs=1, selection="best", progress=False)
