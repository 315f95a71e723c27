/** Tables that lost rows between two counts, as `public.roles (2 rows before, 1 after)`. */
export function lostRows(before: Map<string, number>, after: Map<string, number>): string[] {
  const lost: string[] = [];
  for (const [table, was] of before) {
    const now = after.get(table);
    if (now !== undefined && now < was)
      lost.push(`${table} (${was} ${was === 1 ? 'row' : 'rows'} before, ${now} after)`);
  }
  return lost.sort();
}
