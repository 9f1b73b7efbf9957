"""Knowledge distillation (Hinton et al., 2015): the student (what its method trains: all of it
alone, LoRA's parameters in `lora_kd: {use: lora, distill: {...}}`) trains on
alpha * cross-entropy + (1 - alpha) * T^2 * KL(teacher || student) over temperature-softened logits.

The teacher is a cell of the same suite (`teacher: {strategy: <row>, model: <alias>}`: the same
task and seed, the student's model unless `model` says; it runs first and keeps its model), a fine-tuned run kept in the store
(`teacher: run:<run id>`, from a suite run with `train: {save_model: true}`), or a model already
fine-tuned for the task (`teacher: <hub id | local folder | package:...>`). Teacher and student read the same token ids,
so they must share a vocabulary; a mismatch is an error naming both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from harness.base.digest import bad_run_reference
from harness.config.parsing import Strict
from harness.config.schemas import ModelSpec
from harness.strategies import Context, Part


class TeacherCell(Strict):
    """A cell of the suite as the teacher: its strategy row and model alias (the student's own model
    if unset), on the same task and seed."""

    strategy: str
    model: str | None = None


class DistillArgs(Strict):
    teacher: str | TeacherCell = Field(
        description="{model, strategy} of a cell of the suite, run:<run id> of a kept run, or a fine-tuned model's source")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the cross-entropy on the labels")
    temperature: float = Field(2.0, gt=0)

    @field_validator("teacher")
    @classmethod
    def _run(cls, value):
        if reason := bad_run_reference(value):
            raise ValueError(reason)
        return value


class Distill(Part):
    """Knowledge distillation: the student trains on alpha*CE + (1-alpha)*T^2*KL to a teacher's logits."""

    name = "distill"
    role = "objective"
    Args = DistillArgs
    task_types = frozenset({"classification", "token_classification"})

    def check(self, model):
        if getattr(model.config, "problem_type", None) == "regression":
            return "distillation on logits needs a task with classes, not regression"
        return None

    def prepare(self, context: Context) -> None:
        from harness.run.finetuned import load_kept  # it imports strategies, not the reverse

        teacher = self.args.teacher
        if isinstance(teacher, TeacherCell):  # the suite resolves it to the cell's run id (config.suite.expand)
            raise ValueError(f"distill: teacher cell {teacher.model_dump()} was not resolved to a run")
        if teacher.startswith("run:"):
            model, tokenizer = load_kept(teacher, context.artifacts, "distill")
        else:
            from harness.run.backbones import resolve

            backbone = resolve("teacher", ModelSpec(source=teacher))
            model, tokenizer = backbone.load(context.task_type.model_class, context.task_type.head(), [], 0)
        if tokenizer.get_vocab() != context.tokenizer.get_vocab():
            raise ValueError(f"distill: teacher {teacher!r} and the student tokenize differently; "
                             "distillation on token ids needs a shared vocabulary")
        self.teacher = model.eval()
        for param in self.teacher.parameters():
            param.requires_grad = False

    def loss(self, inputs, outputs):
        student = outputs.logits
        if next(self.teacher.parameters()).device != student.device:
            self.teacher.to(student.device)
        with torch.no_grad():
            teacher = self.teacher(**{k: v for k, v in inputs.items() if k != "labels"}).logits
        t = self.args.temperature
        labels = inputs["labels"].view(-1)
        student, teacher = student.view(-1, student.size(-1)), teacher.view(-1, teacher.size(-1))
        kept = labels != -100  # token classification: only the positions that carry a tag
        student, teacher, labels = student[kept], teacher[kept], labels[kept]
        soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
        hard = F.cross_entropy(student, labels)
        return self.args.alpha * hard + (1 - self.args.alpha) * soft
