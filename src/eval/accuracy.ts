// Top-1 accuracy of a softmax tail: the share of images whose largest logit is their label's.

/** `logits` [images, classes]; ties go to the lower class index. */
export function classificationAccuracy(logits: Float32Array, classes: number, labels: Int32Array): number {
  if (logits.length !== labels.length * classes) throw new Error(`${logits.length} logits for ${labels.length} images of ${classes} classes (expected ${labels.length * classes})`);
  if (labels.length === 0) throw new Error('accuracy of no images is undefined');
  let correct = 0;
  labels.forEach((label, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    if (best === label) correct++;
  });
  return correct / labels.length;
}
