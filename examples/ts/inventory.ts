// TypeScript the transformer turns into JavaScript: interfaces, type aliases,
// annotations, generics, an enum, a class with parameter properties, `import type`.
import type { Request as _Unused } from "./types.d.ts";

enum Stock {
  Out,
  Low,
  Plenty = 10,
}

interface Item {
  name: string;
  count: number;
}

type Counted<T> = { items: T[]; total: number };

class Shelf<T extends Item> {
  constructor(private readonly items: T[]) {}

  count(): Counted<T> {
    const total = this.items.reduce((sum: number, item: T) => sum + item.count, 0);
    return { items: this.items, total };
  }
}

function level(count: number): keyof typeof Stock {
  if (count === 0) return "Out";
  return count < Stock.Plenty ? "Low" : "Plenty";
}

export async function handler(req: { json(): Promise<{ items: Item[] }> }) {
  const { items } = await req.json();
  const counted = new Shelf<Item>(items).count();
  const fail = items.find((item) => item.count < 0);
  if (fail !== undefined) {
    throw new RangeError(`negative count for ${fail.name satisfies string}`);
  }
  return { total: counted.total, level: level(counted.total), plenty: Stock.Plenty };
}
