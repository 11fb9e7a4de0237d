"""`genlab serve RUN [RUN ...]`: a web page to poke trained runs - sample, morph, edit, inpaint, upscale,
translate, compare."""
from __future__ import annotations

import argparse
import os
import sys

import torch

from genlab.cli.options import bounded_float, bounded_int
from genlab.web import Explorer, ExplorerServer, Limits

DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 1))


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="a web page to explore trained runs: sample, morph, edit, inpaint, upscale, translate, compare",
        description="Serves a page (no external resources; works offline) with a tab per thing each run can do. It "
                    "listens on 127.0.0.1 only, by default: nobody else can reach it. --host 0.0.0.0 exposes it to your "
                    "network; it has NO authentication, so anyone who can reach the port can use it (and your CPU) - put "
                    "it behind a reverse proxy with authentication, or an SSH tunnel (ssh -L 7860:127.0.0.1:7860 HOST), "
                    "instead.")
    serve.add_argument("runs", nargs="+", metavar="RUN", help="run directories (VAE, GAN, diffusion, SR, pix2pix, cyclegan)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only; see above)")
    serve.add_argument("--port", type=bounded_int(0, 65535), default=7860, help="port (0: any free one)")
    serve.add_argument("--threads", type=bounded_int(1, 256), default=DEFAULT_THREADS,
                       help="torch threads for model calls, so that the page cannot take the whole machine")
    limits = Limits()
    serve.add_argument("--request-seconds", type=bounded_float(1.0, 3600.0), default=limits.request_seconds, metavar="S",
                       help="a request waiting longer than this is answered with an error (the work in hand finishes)")
    serve.add_argument("--queue", type=bounded_int(0, 1000), default=limits.queue, metavar="N",
                       help="requests that may wait for the model; more are refused at once (busy)")
    serve.add_argument("--max-upload-mb", type=bounded_float(0.01, 1024.0), default=limits.max_upload_bytes / 2**20,
                       metavar="MB", help="largest uploaded file")
    serve.add_argument("--no-data", action="store_true",
                       help="do not load the runs' test data (no picking test images, no class directions)")
    serve.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    limits = Limits(request_seconds=args.request_seconds, queue=args.queue, max_upload_bytes=int(args.max_upload_mb * 2**20))
    explorer = Explorer(args.runs, limits, load_data=not args.no_data)
    server = ExplorerServer(explorer, args.host, args.port, quiet=args.quiet)
    print(f"genlab explorer: {server.url} ({len(explorer.runs)} run(s): {', '.join(explorer.runs)}); Ctrl+C stops it",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach this port can use the explorer (no authentication)",
              file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
