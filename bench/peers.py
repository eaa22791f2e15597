"""The Python peers of patholab's benchmarks: PIL + torchvision DataLoader, torchvision models,
scikit-learn. Each subcommand prints one JSON line, like `patholab bench`."""
import json, os, sys, time


def loader(root, workers=2, batch=32, pin=False):
    import torch
    from PIL import Image
    from torchvision import datasets, transforms as T

    def square(img):
        w, h = img.size
        s = min(w, h)
        return img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))

    tf = T.Compose([T.Lambda(lambda im: square(im.convert("RGB"))), T.Resize((224, 224), interpolation=T.InterpolationMode.BILINEAR),
                    T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = datasets.ImageFolder(root, transform=tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, pin_memory=pin)


def decode(root):
    t0 = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader(root))
    return {"images": n, "seconds": time.perf_counter() - t0}


def extract(root, net, tap, precision="fp32", channels_last="0"):
    import contextlib, torch, torchvision
    model = getattr(torchvision.models, net)(weights=None).eval()
    if channels_last == "1":  # as Intel's guides for bf16 on the CPU advise
        model = model.to(memory_format=torch.channels_last)
    module = dict(model.named_modules())[tap]
    got = {}
    module.register_forward_hook(lambda m, i, o: got.__setitem__("x", o))
    # Low precision as a PyTorch user does it: autocast around the forward, pooling in fp32.
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    cast = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for x, _ in loader(root):
            if channels_last == "1":
                x = x.contiguous(memory_format=torch.channels_last)
            with cast():
                model(x)  # the usual notebook: a hook on the layer, a full forward pass
            got["x"].float().mean((2, 3))
            n += x.shape[0]
    return {"images": n, "seconds": time.perf_counter() - t0}


def extract_cuda(root, net, precision="fp32", batch="128", workers="16", channels_last="1"):
    """End-to-end extraction on CUDA as a strong PyTorch user writes it: DataLoader workers on
    every core with pinned memory, non-blocking copies, cuDNN benchmark, autocast, channels-last
    for CNNs; torchvision for ResNet/DenseNet, timm for EfficientNet-Lite and ViTs; pooled
    features brought back to the host. "fp32" turns cuDNN's TF32 off (patholab's fp32 is fp32).
    One warm-up batch of random pixels runs before the timing."""
    import contextlib, torch, torchvision
    batch, workers = int(batch), int(workers)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    vit = net.startswith("vit")
    if net in ("resnet50", "densenet201"):
        model = getattr(torchvision.models, net)(weights=None)
        if net == "resnet50":
            model.fc = torch.nn.Identity()
        else:
            model.classifier = torch.nn.Identity()
    else:
        import timm
        model = timm.create_model(net, pretrained=False, num_classes=0)
    model = model.cuda().eval()
    cl = channels_last == "1" and not vit
    if cl:
        model = model.to(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    cast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    run = (lambda x: model.forward_features(x)[:, 0]) if vit else model
    with torch.no_grad(), cast():
        run(torch.randn(batch, 3, 224, 224, device="cuda"))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    n, feats = 0, []
    with torch.no_grad():
        for x, _ in loader(root, workers=workers, batch=batch, pin=True):
            x = x.cuda(non_blocking=True)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with cast():
                f = run(x)
            feats.append(f.float().cpu())
            n += x.shape[0]
    torch.cuda.synchronize()
    return {"images": n, "seconds": time.perf_counter() - t0, "features": feats[0].shape[1]}


def forward_cuda(net, precision="bf16", batch="128", reps="10"):
    """Forward passes alone on CUDA, random pixels, set up as extract_cuda does."""
    import contextlib, torch, torchvision
    batch, reps = int(batch), int(reps)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    if net in ("resnet50", "densenet201"):
        model = getattr(torchvision.models, net)(weights=None)
    else:
        import timm
        model = timm.create_model(net, pretrained=False)
    model = model.cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    if not net.startswith("vit"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    cast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    with torch.no_grad(), cast():
        model(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        torch.cuda.synchronize()
    return {"images_per_s": batch * reps / (time.perf_counter() - t0)}


def extract_vit(root, timm_name):
    """A timm ViT's class token (after the final norm) for every image, as a notebook does."""
    import torch, timm
    model = timm.create_model(timm_name, pretrained=False, num_classes=0).eval()
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for x, _ in loader(root):
            model.forward_features(x)[:, 0]
            n += x.shape[0]
    return {"images": n, "seconds": time.perf_counter() - t0}


def forward_vit(timm_name, batch):
    """One forward pass of a batch of random images (peak memory of a ViT at a batch size)."""
    import torch, timm
    model = timm.create_model(timm_name, pretrained=False, num_classes=0).eval()
    with torch.no_grad():
        model.forward_features(torch.randn(int(batch), 3, 224, 224))
    return {"batch": int(batch)}


def matmul():
    import torch
    x = torch.randn(2048, 2048)
    x @ x
    t0 = time.perf_counter()
    for _ in range(10):
        x @ x
    gemm = 2 * 2048 ** 3 * 10 / (time.perf_counter() - t0) / 1e9
    img, w = torch.randn(1, 2048, 64, 64), torch.randn(2048, 2048, 1, 1)
    torch.conv2d(img, w)
    t0 = time.perf_counter()
    for _ in range(10):
        torch.conv2d(img, w)
    return {"gflops": gemm, "conv_gflops": 2 * 2048 ** 2 * 4096 * 10 / (time.perf_counter() - t0) / 1e9}


def learn(path, *parts):
    """Parts: et, rfe, svm (all three when none is named)."""
    want = lambda name: not parts or name in parts
    import numpy as np, pandas as pd
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.feature_selection import RFECV
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    df = pd.read_parquet(path)
    X = df[[c for c in df.columns if c.startswith("f")]].to_numpy(np.float32)
    y, g = df["label_index"].to_numpy(), df["slide"].to_numpy()
    r = {}
    if want("et"):
        t0 = time.perf_counter()
        ExtraTreesClassifier(n_estimators=100, max_features="sqrt", n_jobs=-1).fit(X, y)
        r["extra_trees_fit"] = time.perf_counter() - t0
    if want("rfe"):
        t0 = time.perf_counter()
        sel = RFECV(ExtraTreesClassifier(n_estimators=100, max_features="sqrt", n_jobs=-1), step=0.1, cv=GroupKFold(3), n_jobs=1)
        sel.fit(X, y, groups=g)
        r["rfe"] = time.perf_counter() - t0
        r["rfe_k_min"] = int(sel.n_features_)
    if want("svm"):
        t0 = time.perf_counter()
        grid = GridSearchCV(make_pipeline(StandardScaler(), LinearSVC()), {"linearsvc__C": [10.0 ** e for e in range(-10, 2)]}, cv=GroupKFold(5), n_jobs=-1)
        grid.fit(X, y, groups=g)
        r["svm_grid"] = time.perf_counter() - t0
    return r


def tiles(path, mpp):
    """openslide-python + PIL + a 2-worker DataLoader: the same tissue mask (the fixture script's
    Python implementation), the same grid, every tissue tile read, resized to 224, normalised."""
    import os
    import numpy as np
    import openslide, torch
    from PIL import Image
    from torchvision import transforms as T
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    from make_wsi import downsampled, grid, tissue_mask, over_white

    t0 = time.perf_counter()
    s = openslide.OpenSlide(path)
    thumb = downsampled(s, 16.0)
    mask = tissue_mask(thumb)
    sx, sy = s.dimensions[0] / mask.shape[1], s.dimensions[1] / mask.shape[0]
    keep = []
    for lvl, x, y, w, h in grid(s, 224, float(mpp)):
        ext = w * s.level_downsamples[lvl]
        x0, x1 = max(0, int(np.ceil(x / sx - 0.5))), min(mask.shape[1], int(np.ceil((x + ext) / sx - 0.5)))
        y0, y1 = max(0, int(np.ceil(y / sy - 0.5))), min(mask.shape[0], int(np.ceil((y + ext) / sy - 0.5)))
        if x1 > x0 and y1 > y0 and mask[y0:y1, x0:x1].mean() >= 0.5:
            keep.append((lvl, x, y, w, h))
    tf = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    class Tiles(torch.utils.data.Dataset):
        slide = None

        def __len__(self):
            return len(keep)

        def __getitem__(self, i):
            if self.slide is None:
                self.slide = openslide.OpenSlide(path)
            lvl, x, y, w, h = keep[i]
            img = self.slide.read_region((x, y), lvl, (w, h)).convert("RGB")
            if img.size != (224, 224):
                img = img.resize((224, 224), Image.BILINEAR)
            return tf(img)

    n = sum(b.shape[0] for b in torch.utils.data.DataLoader(Tiles(), batch_size=32, num_workers=2))
    return {"tiles": n, "seconds": time.perf_counter() - t0}


def mil_data(path, init, n_bags, tiles, features):
    """Bags for the `mil` part: `n_bags` bags of `tiles` random tiles (a positive bag holds a few
    shifted ones), and the reference ABMIL's initial weights (tests/fixtures/make_mil.py)."""
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    from make_mil import ABMIL
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(0)
    n_bags, tiles, features = int(n_bags), int(tiles), int(features)
    y = torch.arange(n_bags) % 2
    x = torch.randn(n_bags, tiles, features, generator=g)
    for b in range(1, n_bags, 2):
        x[b, :5] += 0.5
    save_file({"x": x.reshape(-1, features).contiguous(), "sizes": torch.full((n_bags,), tiles), "y": y}, path)
    torch.manual_seed(0)
    m = ABMIL(features, 512, 384, True, 1, 0.0, 2)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, init)
    return {"bags": n_bags}


def mil(path, init, epochs):
    """The PyTorch reference loop: the same module, weights and bags; AdamW (lr 1e-4, weight decay
    1e-2), cosine schedule stepped per epoch, one step per bag in the bags' order."""
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    from make_mil import ABMIL
    from safetensors.torch import load_file
    t = load_file(path)
    d = t["x"].shape[1]
    bags = list(torch.split(t["x"], t["sizes"].tolist()))
    y = t["y"]
    m = ABMIL(d, 512, 384, True, 1, 0.0, 2)
    m.load_state_dict(load_file(init), strict=True)
    epochs = int(epochs)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    t0 = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for i, b in enumerate(bags):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(b)[0].unsqueeze(0), y[i:i + 1])
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
    return {"bags": len(bags), "seconds": time.perf_counter() - t0, "final_loss": total / len(bags)}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    print(json.dumps({"tiles": tiles, "decode": decode, "extract": extract, "extract_vit": extract_vit, "extract_cuda": extract_cuda, "forward_cuda": forward_cuda, "forward_vit": forward_vit, "matmul": matmul, "learn": learn, "mil_data": mil_data, "mil": mil}[cmd](*args)))
