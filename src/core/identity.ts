/**
 * Where the Action lives on GitHub (`uses: <this>@v1`): in workflows `init` writes and in the
 * release workflow. The same as package.json's `repository` (a test holds them together); npm's
 * provenance needs that to be the repository the package is built from.
 */
export const ActionRepository = 'pg-migrate-verify/pg-migrate-verify';
