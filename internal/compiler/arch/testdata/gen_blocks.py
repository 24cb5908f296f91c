"""Golden files for the shared blocks in net.go, from the real torch modules."""
import torch
from golden import save, bf16_round_

torch.manual_seed(0)


class Blocks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 12)
        self.ln = torch.nn.LayerNorm(12, eps=1e-6)
        self.gn = torch.nn.GroupNorm(2, 4, eps=1e-6)
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, img):
        y = self.ln(self.lin(x))
        y = torch.nn.functional.gelu(y, approximate="tanh")
        z = torch.nn.functional.silu(self.conv(self.gn(img)))
        return y, z


m = Blocks().eval()
bf16_round_(m)
x = torch.randn(2, 3, 8)
img = torch.randn(1, 4, 5, 6)
with torch.no_grad():
    y, z = m(x, img)
save("blocks", m, {"x": x, "img": img}, {"y": y, "z": z})
