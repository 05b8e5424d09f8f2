"""What the keys do and how to read the plots."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# ibtui

Set up a run in the form on the left, press **s**, and watch each layer's information move.

| key | |
|---|---|
| **s** | start a run with the form's settings |
| **space** | pause / resume training |
| **c** | cancel: keep what was measured, export PNGs of the partial run |
| **e** | export the PNG figures now |
| **p** | presets (also in the command palette, ctrl+p) |
| **m** | switch the plotted estimator |
| **v** | compression verdicts per layer, once a run has ended |
| **r** | runs: every run and sweep under the runs folder (also ctrl+p "Runs"): **enter** replays one, **space** selects up to 4, **o** overlays them on one plane (colour per run, legend), **t** its sensitivity table; sweeps show points done / running / to do |
| **t** | the sensitivity table of the run on screen (written by `ibtui sensitivity RUN`) |
| **f** | show / hide the form (it folds away while a run trains on a narrow terminal) |
| **?** | this help |
| **q** | quit (asks first while a run trains; leaves once the engine has stopped, **q** again at once) |

**tab** moves between fields; **esc** leaves a field so the keys above work.

**The information plane.** x is I(X;T), what layer T keeps about the input; y is I(T;Y), what it
knows about the label, both in bits. Axes are fixed to the run's bounds: log2 N and H(Y). Each
layer has its own marker (1, 2, ... hidden layers, o the softmax output); colour is the epoch
(dark early, bright late, log scale); the latest snapshot is red (inverted under NO_COLOR), joined layer to layer. With
several seeds the plot shows their mean.

Fitting moves points up and right; compression (Shwartz-Ziv & Tishby) moves them left late in
training, which Saxe et al. found for tanh but not for ReLU. When a run ends (finished or cancelled) a
notification counts the layers whose I(X;T) fell from its peak by more than the noise explains;
**v** shows the table (peak epoch, drop in bits and %, verdict, ± the spread over seeds).
The count is over hidden layers: the softmax output is pulled towards the labels by the loss.

**ibtui watch RUN** opens this app on a run another process writes (or a finished one),
read-only: it follows the plane, curves and status live and shows the verdicts when it ends.

Runs are ordinary run directories (same as `ibtui run`): `ibtui resume DIR` continues a
cancelled one. Press **esc** to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
