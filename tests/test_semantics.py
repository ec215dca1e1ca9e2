"""Semantics a wrong number would hide: what mode a frozen encoder runs in, that a frozen
batch-norm encoder keeps its statistics, which way the confusion matrix points, and that a
prediction is the argmax of the logits. Each test fails on the bug named in its docstring."""

import pytest
import torch

from fashionae.modelfile import load_model
from fashionae.models import ModelConfig, build_model
from fashionae.results import confusion_text
from fashionae.runs import RunConfig, build, confusion, execute
from fashionae.training import TrainConfig, fit
from helpers import ON_DEVICE, QUIET, synthetic_images


def frozen_classifier(paper_head=False, encoder_type="paper", dropout=0.5):
    torch.manual_seed(0)
    model = build_model(ModelConfig(task="classifier", latent=16, dropout=dropout,
                                    encoder_type=encoder_type, paper_head=paper_head))
    model.freeze_encoder()
    return model


# ------------------------------------------------------------------ the frozen encoder's mode

def test_frozen_encoder_runs_in_eval_mode_while_the_head_trains():
    """Bug caught: Classifier.train() not putting a frozen encoder back in eval mode, so dropout
    would perturb the features the head is trained on."""
    model = frozen_classifier().train()
    assert model.training and model.head.training
    assert not any(m.training for m in model.encoder.modules())
    # behaviour, not just the flag: with dropout 0.5 in the encoder, two passes agree exactly
    x = torch.rand(8, 1, 28, 28)
    assert torch.equal(model.logits(x), model.logits(x))


def test_paper_head_keeps_the_frozen_encoders_dropout_active():
    """The author's defect is reproduced on purpose: with --paper-head the frozen encoder stays in
    training mode, so its dropout changes each pass. Bug caught: the paper head silently fixed
    (or the eval-mode rule applied to it), which would change the reproduced numbers."""
    model = frozen_classifier(paper_head=True).train()
    assert model.encoder.training
    x = torch.rand(8, 1, 28, 28)
    assert not torch.equal(model.logits(x), model.logits(x))
    model.eval()  # evaluation is deterministic in both cases
    assert torch.equal(model.logits(x), model.logits(x))


@pytest.mark.parametrize("paper_head", [False, True])
def test_encoder_mode_seen_by_every_training_step(paper_head):
    """The mode the encoder is really in while ``fit`` takes its steps (a hook records it), so a
    trainer that calls model.train() after freezing cannot undo it unnoticed."""
    cfg = RunConfig(model=ModelConfig(task="classifier", latent=16, dropout=0.2, paper_head=paper_head,
                                      image_size=(28, 28)),
                    train=TrainConfig(epochs=1, batch_size=50, device="cpu"), strategy="random-frozen")
    model = build(cfg)
    seen = []  # (model in training mode, encoder in training mode) at each encoder call
    model.encoder.register_forward_pre_hook(lambda m, _: seen.append((model.head.training, m.training)))
    x, y = synthetic_images(100, 0)
    fit(model, (x, y), (x[:50], y[:50]), cfg.train)
    during_steps = {enc for head, enc in seen if head}
    assert len(seen) > 2 and during_steps == {paper_head}
    assert not any(enc for head, enc in seen if not head)  # evaluation: always eval mode


def test_frozen_batchnorm_encoder_keeps_its_running_statistics(tiny, tmp_path):
    """A frozen "strong" (batch-norm) encoder: weights and running mean/var/count unchanged by
    training the head. Bug caught: a frozen encoder left in train mode, whose batch-norm layers
    would drift their statistics while its weights stay fixed."""
    t = TrainConfig(epochs=1, batch_size=50, train_subset=200, eval_subset=100, train_eval_subset=50,
                    **ON_DEVICE)
    cfg = RunConfig(model=ModelConfig(task="classifier", encoder_type="strong", arch="conv", dropout=0.0),
                    train=t, strategy="random-frozen")
    execute(cfg, tmp_path / "clf", data=tiny, **QUIET)
    saved = load_model(tmp_path / "clf" / "model.safetensors").state_dict()
    initial = build(cfg)  # random-frozen starts from the seeded initial weights: rebuild them
    stats = [k for k in saved if k.startswith("encoder.") and "running_" in k]
    assert len(stats) == 10  # 5 batch-norm layers, mean and var
    for k, v in initial.state_dict().items():
        if k.startswith("encoder."):
            assert torch.equal(saved[k], v.cpu()), k
    assert not torch.equal(saved["head.weight"], initial.state_dict()["head.weight"])  # the head trained


# ------------------------------------------------------------------ confusion matrix

def test_confusion_matrix_rows_are_true_classes():
    """A hand-made case with an asymmetric answer. Bug caught: rows and columns swapped (the
    most confused pair would read "b taken for a"), or recall computed over columns."""
    true = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 1, 0, 2])
    r = confusion(true, pred, ("a", "b", "c", "d"))
    assert r["confusion_matrix"] == [[1, 2, 0, 0],   # a: once right, twice taken for b
                                     [0, 2, 0, 0],   # b: always right
                                     [1, 0, 1, 0],   # c: once taken for a
                                     [0, 0, 0, 0]]   # d: no test images
    assert r["per_class_acc"] == pytest.approx([1 / 3, 1.0, 0.5, 0.0])
    assert r["most_confused"] == {"true": "a", "predicted": "b", "count": 2}
    assert confusion_text(r["most_confused"]) == "a taken for b (2×)"
    # no mistakes: no pair to name (argmax of an all-zero matrix would name a diagonal one)
    perfect = confusion(true, true, ("a", "b", "c", "d"))["most_confused"]
    assert confusion_text(perfect) == "none (no test image misclassified)"


def test_summary_confusion_agrees_with_the_test_labels(tiny, tmp_path):
    """End to end: the summary's matrix rows add up to each class's test images, its trace to
    the test accuracy, and per-class accuracy is its diagonal over its rows."""
    t = TrainConfig(epochs=1, batch_size=50, train_subset=300, eval_subset=300, train_eval_subset=50,
                    **ON_DEVICE)
    s = execute(RunConfig(model=ModelConfig(task="classifier", latent=16), train=t, strategy="scratch"),
                tmp_path / "clf", data=tiny, **QUIET)
    cm = torch.tensor(s["confusion_matrix"])
    counts = torch.bincount(tiny.test_labels[:300], minlength=10)
    assert torch.equal(cm.sum(1), counts)
    assert cm.trace().item() / 300 == pytest.approx(s["test_acc"])
    assert s["per_class_acc"] == pytest.approx((cm.diag() / cm.sum(1).clamp(min=1)).tolist())


# ------------------------------------------------------------------ predictions

def test_prediction_is_the_argmax_of_the_logits_even_when_the_sigmoid_ties():
    """With the paper head, sigmoid(20) and sigmoid(30) are both 1.0 in float32: the argmax of the
    scores would pick class 0, the argmax of the logits picks class 1. Bug caught: predicting
    from the scores (saturated outputs tie and the first class wins)."""
    model = frozen_classifier(paper_head=True).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([20.0, 30.0] + [-5.0] * 8))
    x = torch.rand(4, 1, 28, 28)
    out = model(x, torch.zeros(4, dtype=torch.long))
    assert torch.equal(out.output[:, 0], out.output[:, 1])  # the tie is real
    assert out.prediction.tolist() == [1] * 4
    assert model.predict(x).tolist() == [1] * 4
    assert model.metrics(out, torch.tensor([1, 1, 0, 1]))["acc"].item() == 3


def test_loaded_run_predicts_the_argmax(tiny, tmp_path):
    """fashionae.load(run).predict names the class of the largest logit, and its probabilities
    are the softmax of the logits."""
    import fashionae
    t = TrainConfig(epochs=1, batch_size=50, train_subset=300, eval_subset=100, train_eval_subset=50,
                    **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(task="classifier", latent=16), train=t, strategy="scratch"),
            tmp_path / "clf", data=tiny, **QUIET)
    run = fashionae.load(tmp_path / "clf", precision="fp32")  # as the model's own logits below
    x = tiny.test_images[:20].unsqueeze(1).float() / 255
    logits = run.model.logits(x)
    assert run.predict(x) == [tiny.classes[i] for i in logits.argmax(1).tolist()]
    assert torch.allclose(run.predict_proba(x), torch.softmax(logits, 1), atol=1e-6)


def test_a_paper_head_classifier_gives_the_probabilities_it_was_trained_on(tiny, tmp_path, capsys):
    """Under the author's paper head the cross-entropy saw sigmoid(logits): the probabilities
    are the softmax of those, capped at e / (e + 9) for 10 classes, and `classify` says so, where
    a softmax of the raw logits would print confident numbers the model was never fitted to."""
    import math
    import fashionae
    from PIL import Image
    from fashionae.cli import main
    t = TrainConfig(epochs=1, batch_size=50, train_subset=300, eval_subset=100, train_eval_subset=50,
                    **ON_DEVICE)
    execute(RunConfig(model=ModelConfig(task="classifier", latent=16, paper_head=True), train=t,
                      strategy="scratch"), tmp_path / "clf", data=tiny, **QUIET)
    run = fashionae.load(tmp_path / "clf", precision="fp32")  # as the model's own logits below
    x = tiny.test_images[:20].unsqueeze(1).float() / 255
    logits = run.model.logits(x)
    probs = run.predict_proba(x)
    cap = math.e / (math.e + 9)
    assert torch.allclose(probs, torch.softmax(torch.sigmoid(logits), 1), atol=1e-6) and probs.max() < cap
    assert run.model.max_probability() == pytest.approx(cap) and run.predict(x) == [
        tiny.classes[i] for i in logits.argmax(1).tolist()]
    Image.fromarray(tiny.test_images[0].numpy()).save(tmp_path / "one.png")
    assert main(["classify", str(tmp_path / "clf"), str(tmp_path / "one.png")]) == 0
    out, err = capsys.readouterr()
    assert err == (f"note: {tmp_path / 'clf'} has the author's paper head (a Sigmoid before the cross-entropy), so "
                   "its probabilities cannot exceed 23.2%: read them as a ranking\n")
    assert float(out.split(", ")[0].rsplit(" ", 1)[1].rstrip("%")) < 23.2
