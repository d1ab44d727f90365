"""Data: everything the workbook trains and scores on, offline.

- `images`: `load_images(spec)` for 'mnist', 'digits' (8 x 8), 'shapes:S', 'moving-mnist:F', 'latents:CKPT',
  'imagefolder:PATH' and 'hf:ID' (online); PNG folders in and out.
- `shapes`: coloured shapes with known factors (notebook 09); `moving_mnist`: clips made from MNIST (notebook 12);
  `captions`: captions of MNIST digits and their tokenizer (notebook 11).
"""
