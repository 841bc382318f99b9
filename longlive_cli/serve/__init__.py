"""``longlive serve``: a web studio, an HTTP/WebSocket API and OSC over one loaded model.

Modules: :mod:`.studio` (the model's one running job: a live session built from :mod:`longlive_cli.live`,
or a render), :mod:`.media` (the live video as fragmented MP4 for the page's Media Source Extensions),
:mod:`.app` (the FastAPI app: routes, auth, limits), :mod:`.osc` (OSC over UDP). ``static/`` is the page.
Importing this package imports nothing heavy; :mod:`.app` imports FastAPI.
"""
