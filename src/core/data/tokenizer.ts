/** Character-level tokenizer: the vocabulary is the sorted set of characters in the corpus. */
export class CharTokenizer {
  readonly chars: string[];
  private readonly index: Map<string, number>;

  constructor(chars: string[]) {
    this.chars = chars;
    this.index = new Map(chars.map((c, i) => [c, i]));
  }

  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(Array.from(text))].sort());
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string): Int32Array {
    const chars = Array.from(text);
    const out = new Int32Array(chars.length);
    chars.forEach((c, i) => {
      const id = this.index.get(c);
      if (id === undefined) throw new Error(`character ${JSON.stringify(c)} is not in the vocabulary`);
      out[i] = id;
    });
    return out;
  }

  /** Ids of `text`, skipping characters the vocabulary lacks (for user prompts). */
  encodeKnown(text: string): { ids: Int32Array; skipped: number } {
    const known = Array.from(text).filter((c) => this.index.has(c));
    return { ids: this.encode(known.join('')), skipped: Array.from(text).length - known.length };
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.chars[ids[i]!] ?? '';
    return s;
  }
}
