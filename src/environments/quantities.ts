/** Kubernetes-style resource quantities: CPU in cores or millicores, memory and storage in bytes. */

const CPU = /^(\d+(?:\.\d{1,3})?)(m?)$/;
const BYTES = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/;
const UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** "500m" → 500, "1" → 1000, "0.5" → 500; null when not a CPU quantity. */
export function cpuMillicores(quantity: string): number | null {
  const match = CPU.exec(quantity.trim());
  if (!match?.[1]) return null;
  const value = Number(match[1]);
  const milli = match[2] === 'm' ? value : value * 1000;
  return Number.isInteger(milli) && milli > 0 ? milli : null;
}

/** "1Gi" → 1073741824, "512Mi", "1G"; null when not a byte quantity. */
export function quantityBytes(quantity: string): number | null {
  const match = BYTES.exec(quantity.trim());
  if (!match?.[1]) return null;
  const bytes = Number(match[1]) * (UNITS[match[2] ?? ''] ?? Number.NaN);
  return Number.isFinite(bytes) && bytes > 0 ? Math.round(bytes) : null;
}

export const CPU_QUANTITY = /^\d+(\.\d{1,3})?m?$/;
export const BYTE_QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/;
