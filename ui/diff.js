// A line diff (longest common subsequence over lines, with the common head and tail trimmed first,
// so that the usual small edit of a long policy costs little). Returns [{op: " "|"-"|"+", text, a, b}],
// a and b being 1-based line numbers in the old and the new text (0 where the line is absent).
export function diffLines(oldText, newText) {
  const a = oldText.split("\n");
  const b = newText.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  const out = [];
  for (let i = 0; i < start; i++) out.push({ op: " ", text: a[i], a: i + 1, b: i + 1 });
  if (n * m > 25_000_000) {
    // Too large for the table: show the middle as removed then added.
    for (let i = start; i < endA; i++) out.push({ op: "-", text: a[i], a: i + 1, b: 0 });
    for (let j = start; j < endB; j++) out.push({ op: "+", text: b[j], a: 0, b: j + 1 });
  } else {
    // lcs[i][j]: the LCS length of a[start+i..endA) and b[start+j..endB).
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i][j] = a[start + i] === b[start + j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[start + i] === b[start + j]) {
        out.push({ op: " ", text: a[start + i], a: start + i + 1, b: start + j + 1 });
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
        out.push({ op: "+", text: b[start + j], a: 0, b: start + j + 1 });
        j++;
      } else {
        out.push({ op: "-", text: a[start + i], a: start + i + 1, b: 0 });
        i++;
      }
    }
  }
  for (let k = 0; k < a.length - endA; k++) out.push({ op: " ", text: a[endA + k], a: endA + k + 1, b: endB + k + 1 });
  return out;
}

// Keeps `context` unchanged lines around each change; longer unchanged runs become one {op: "…"} line.
export function hunks(lines, context = 3) {
  const keep = new Array(lines.length).fill(false);
  lines.forEach((l, i) => {
    if (l.op === " ") return;
    for (let k = Math.max(0, i - context); k <= Math.min(lines.length - 1, i + context); k++) keep[k] = true;
  });
  const out = [];
  let skipped = 0;
  lines.forEach((l, i) => {
    if (keep[i]) {
      if (skipped) out.push({ op: "…", text: `${skipped} unchanged line(s)` });
      skipped = 0;
      out.push(l);
    } else {
      skipped++;
    }
  });
  if (skipped) out.push({ op: "…", text: `${skipped} unchanged line(s)` });
  return out;
}
