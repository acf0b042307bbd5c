"""Shared parameters in a built module: both backends call `tie_parameters` (the standalone file
gets a copy of it), so the fx module and the generated file tie the same tensors."""


def tie_parameters(module, owner):
    """Make `module` use `owner`'s parameters and buffers, as a Caffe layer whose every
    `param { name }` names the blobs of an earlier layer uses that layer's blobs: afterwards one
    tensor serves both, in the forward pass and in the state_dict (under both names)."""
    for name, value in [*owner.named_parameters(), *owner.named_buffers()]:
        path, _, attr = name.rpartition(".")
        holder = module.get_submodule(path)
        mine = getattr(holder, attr)
        if mine is None or mine.shape != value.shape:
            raise ValueError(f"cannot tie {name}: {tuple(value.shape)} in the owner, "
                             f"{None if mine is None else tuple(mine.shape)} here")
        setattr(holder, attr, value)
