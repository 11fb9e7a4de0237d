"""``genlab serve``: a web explorer for trained runs (sample, morph, edit, inpaint, upscale, translate, compare).

``Explorer`` holds the runs and answers the page's requests (``explorer.py``); ``ExplorerServer`` is the HTTP
side with its limits (``server.py``); the page itself is ``static/`` (no external resources)."""
from genlab.web.explorer import Explorer
from genlab.web.server import ExplorerServer
from genlab.web.uploads import Limits, RequestError

__all__ = ["Explorer", "ExplorerServer", "Limits", "RequestError"]
