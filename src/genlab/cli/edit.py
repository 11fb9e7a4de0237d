"""`genlab edit RUN`: move images along a latent direction (class to class, a GANSpace component, or
folder to folder), and measure what the direction does."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import genlab
from genlab.cli.options import add_inversion_options, add_labels_option, bounded_int, images_for, labels_for, require_labels
from genlab.data import Dataset, load_dataset
from genlab.errors import ConfigError, DataError
from genlab.io.checkpoints import read_run_config
from genlab.io.grids import save_image
from genlab.tools.editing import (
    edit,
    edit_grid,
    examples_direction,
    format_measurements,
    label_direction,
    measure_direction,
    num_classes,
    parse_direction,
    parse_strengths,
    principal_direction,
    read_folder,
    repeat_to,
)
from genlab.tools.inversion import default_projection_steps, projection_bar, read_image_for


def add_parser(commands: argparse._SubParsersAction) -> None:
    edit_cmd = commands.add_parser("edit", help="move images along a latent direction: class to class, a GANSpace component, "
                                                "or folder to folder")
    edit_cmd.add_argument("run", help="run directory (VAE, GAN or GAN encoder)")
    edit_cmd.add_argument("--image", action="append", default=None, metavar="X.png",
                          help="image file to edit, repeatable (default: -n test images of the direction's source class)")
    edit_cmd.add_argument("--direction", default=None, metavar="'A->B'|pcK",
                          help="class to class by the data's class names or indices (e.g. 'Sneaker->Ankle boot'), "
                               "or GANSpace component K (pc0, pc1, ...)")
    edit_cmd.add_argument("--from-dir", default=None, metavar="DIR", help="folder of example images of the start (with --to-dir)")
    edit_cmd.add_argument("--to-dir", default=None, metavar="DIR", help="folder of example images of the goal (with --from-dir)")
    edit_cmd.add_argument("--strength", default="0,0.5,1,1.5", metavar="S,S,...",
                          help="strengths, one column each; 0 = the reconstruction (a list starting with a negative "
                               "needs the = form: --strength=-2,-1,0,1,2)")
    add_labels_option(edit_cmd, "of each --image and of the --from-dir/--to-dir examples, repeated in order "
                                "(test images bring their own)")
    edit_cmd.add_argument("--data", default=None, help="labelled dataset for class directions and names (default: the run's dataset)")
    edit_cmd.add_argument("--split", default="train", help="split the class directions are computed on (measuring uses the test split)")
    edit_cmd.add_argument("--max-per-class", type=bounded_int(1, 100_000), default=500, metavar="N",
                          help="images per class for a class direction")
    edit_cmd.add_argument("-n", "--num-images", type=bounded_int(1, 1000), default=8, metavar="N",
                          help="images to edit when no --image is given")
    edit_cmd.add_argument("--measure", type=bounded_int(0, 10_000), default=100, metavar="N",
                          help="measure the direction (judge flip rate, feature distance) on N test images; 0: skip")
    edit_cmd.add_argument("-o", "--output", default="edits.png", help="PNG grid: a row per image, a column per strength")
    add_inversion_options(edit_cmd)
    edit_cmd.add_argument("--no-progress", action="store_true", help="no progress bars")
    edit_cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    strengths = parse_strengths(args.strength)  # a typo fails before any loading
    if args.direction is not None and (args.from_dir or args.to_dir):
        raise ConfigError("give --direction or --from-dir/--to-dir, not both")
    if args.direction is None and not (args.from_dir and args.to_dir):
        raise ConfigError("give --direction 'A->B' or pcK, or both --from-dir and --to-dir")
    model = genlab.load(args.run)
    given = labels_for(args, model, None)
    images = [read_image_for(model, path, "--image") for path in args.image or []]
    encoder = genlab.load(args.encoder) if args.encoder else None
    # What to project, counted first, so that one bar (with one estimate) covers all of it.
    dataset, classes, examples, direction_images = None, None, None, 0
    text = (args.direction or "").strip()
    if text.lower().startswith("pc") and text[2:].isdigit():
        component = parse_direction(text, ())[1]
    elif args.direction is not None:
        dataset = images_for(args)
        if dataset.labels is None or not dataset.classes:
            raise ConfigError(f"--direction {args.direction!r} names classes but {dataset.name!r} has no class names; "
                              "use pcK or --from-dir/--to-dir")
        classes = parse_direction(args.direction, dataset.classes)[1:]
        direction_images = sum(min(args.max_per_class, int((dataset.labels == c).sum())) for c in classes)
    else:
        require_labels(model, given, "the --from-dir/--to-dir examples")
        examples = (read_folder(model, args.from_dir), read_folder(model, args.to_dir))
        direction_images = sum(len(e) for e in examples)
    source_class = classes[0] if classes else None
    test = _test_images(args, dataset) if (not images or args.measure) else None
    if images:
        require_labels(model, given, "each --image")
        labels = None if given is None else repeat_to(given, len(images))
        batch = torch.stack(images)
    elif test is None:
        raise ConfigError("no --image given and no test data to take images from; pass --image X.png")
    else:
        batch, labels = _pick(test, source_class, args.num_images, model)
        if given is not None:
            labels = repeat_to(given, len(batch))
    measuring = bool(args.measure) and test is not None and tuple(test.image_shape) == (1, 28, 28)
    held_out, held_labels = _pick(test, source_class, args.measure, model) if measuring else (None, None)

    steps = default_projection_steps(model, encoder) if args.projection_steps is None else args.projection_steps
    total = direction_images + len(batch) + (len(held_out) if measuring else 0)
    if steps and getattr(model, "kind", None) == "gan" and encoder is None:
        print(f"note: projecting {total:,} images onto the GAN by optimisation ({steps} steps each: minutes on a CPU); "
              f"--encoder RUN, a GAN encoder from `genlab train encoder --gan {args.run}`, is the fast path", file=sys.stderr)
    bar = projection_bar(total, desc="projecting", enabled=not args.no_progress) if steps else None
    options = {"encoder": encoder, "steps": args.projection_steps, "progress": bar if bar is not None else not args.no_progress}
    try:
        if classes is not None:
            direction = label_direction(model, dataset, *classes, max_per_class=args.max_per_class, **options)
        elif examples is not None:
            name = f"{Path(args.from_dir).name}->{Path(args.to_dir).name}"
            direction = examples_direction(model, *examples, name, **options, **({"labels": given} if given else {}))
        else:
            direction = principal_direction(model, component)
        edited = edit(model, batch, direction, strengths, **options, **({"labels": labels} if labels is not None else {}))
        written = save_image(edit_grid(edited, strengths), args.output)
        rows = (measure_direction(model, held_out, direction, strengths, **options,
                                  **({"labels": held_labels} if held_labels is not None else {})) if measuring else None)
    finally:
        if bar is not None:
            bar.close()
    print(written)
    if rows is not None:
        of_class = f" of class {test.classes[direction.source_class]!r}" if direction.source_class is not None else ""
        print(format_measurements(rows, f"{direction.name}, {len(held_out)} {test.name!r} test images{of_class}"))
    elif args.measure:
        print("(not measured: the shipped judge reads 1×28×28 test images; none were available)")
    return 0


def _test_images(args: argparse.Namespace, dataset: Dataset | None) -> Dataset | None:
    """The test split of the data the edit command's directions come from, or None where there is none."""
    name = dataset.name if dataset is not None else args.data or read_run_config(args.run).get("dataset", {}).get("name")
    try:
        return load_dataset(name, split="test")
    except (DataError, TypeError):
        return None


def _pick(dataset: Dataset, label: int | None, n: int, model) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first ``n`` images of class ``label`` (of any class when None) as floats, and their classes where
    ``model`` is class-conditional (else None)."""
    if label is not None and dataset.labels is not None:
        index = (dataset.labels == label).nonzero().flatten()[:n]
    else:
        index = torch.arange(min(n, len(dataset)))
    labels = dataset.labels[index] if num_classes(model) and dataset.labels is not None else None
    require_labels(model, labels, "the images to edit (the test data has none)")
    return dataset.float_images(index), labels
