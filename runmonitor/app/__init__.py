"""The composition root: opens the workspace, history and engine once, for every front end.

Imports every Qt-free part below it (and the simulator, for the demo); no Qt."""
