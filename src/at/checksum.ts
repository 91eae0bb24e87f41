// The 16-bit XOR checksum the module reports after an upload ("+QFUPL: <size>,<checksum>",
// DESIGN.md §6): big-endian 16-bit words XORed together; an odd last byte is the high byte of a word.

export function checksum16(data: Uint8Array): number {
  let sum = 0;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) {
    sum ^= (data[i] << 8) | data[i + 1];
  }
  if (even !== data.length) sum ^= data[even] << 8;
  return sum;
}
