// AudioWorklet: microphone samples at the context's rate -> 16 kHz mono Int16 frames of ~100 ms.
// Resampling is linear interpolation after a simple moving-average low-pass, enough for speech.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;
    this.position = 0;          // fractional read position into the input history
    this.history = new Float32Array(0);
    this.out = new Int16Array(1600);
    this.filled = 0;
    this.levelSum = 0;
    this.levelCount = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const length = input[0].length;
    const mono = new Float32Array(length);
    for (let c = 0; c < channels; c++) {
      const data = input[c];
      for (let i = 0; i < length; i++) mono[i] += data[i] / channels;
    }
    for (let i = 0; i < length; i++) { this.levelSum += mono[i] * mono[i]; this.levelCount++; }
    const joined = new Float32Array(this.history.length + length);
    joined.set(this.history);
    joined.set(mono, this.history.length);
    const taps = Math.max(1, Math.floor(this.ratio));
    while (this.position + taps + 1 < joined.length) {
      const base = Math.floor(this.position);
      const frac = this.position - base;
      let a = 0, b = 0;
      for (let t = 0; t < taps; t++) { a += joined[base + t]; b += joined[base + t + 1]; }
      const value = ((1 - frac) * a + frac * b) / taps;
      const clipped = Math.max(-1, Math.min(1, value));
      this.out[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.out.length) {
        const frame = this.out.slice(0);
        const level = Math.sqrt(this.levelSum / Math.max(1, this.levelCount));
        this.port.postMessage({ frame: frame.buffer, level }, [frame.buffer]);
        this.filled = 0; this.levelSum = 0; this.levelCount = 0;
      }
      this.position += this.ratio;
    }
    const keep = Math.floor(this.position);
    this.history = joined.slice(keep);
    this.position -= keep;
    return true;
  }
}
registerProcessor("capture-processor", CaptureProcessor);
