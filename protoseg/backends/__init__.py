"""Backends: each turns a protoseg.plan.Plan into one kind of output and reads nothing else.

- `fx`: a torch.fx.GraphModule (imports torch).
- `source`: a standalone Python file that needs only torch (imports nothing of torch itself).
"""
