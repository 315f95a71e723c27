import path from 'node:path';
import { expect, test } from '@jest/globals';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();

test('umzug modules (ESM .js under "type": "module", and .ts) get { name, path, context } and run through every check', async () => {
  const report = await verify(
    await settingsFor(path.join(fixture('umzug-project'), 'migrations')),
    edgesOn(server),
  );
  expect(report.sets[0]?.format).toBe('umzug');
  expect(report.sets[0]?.formatReason).toContain('auto: 3 of 3 modules take a { context }');
  expect(report.sets[0]?.migrations.map((m) => `${m.id} ${m.reversible}`)).toEqual([
    '2024.01.10T10.00.00.create-products yes',
    '2024.01.11T09.30.00.add-price yes',
    '2024.01.12T14.00.00.case-insensitive-sku no',
  ]);
  expect(report.findings.map((f) => `${f.check} ${f.migration}`)).toEqual([
    'reversibility 2024.01.12T14.00.00.case-insensitive-sku',
  ]);
  expect(report.findings[0]?.message).toContain(
    'index public.products_sku_idx on public.products: definition differs (before up: CREATE UNIQUE INDEX products_sku_idx ON public.products USING btree (sku) WHERE (deleted_at IS NULL); after down: CREATE UNIQUE INDEX products_sku_idx ON public.products USING btree (sku))',
  );
  expect(report.sets[0]?.migrations[0]?.changes).toContain('+ table public.products');
});
