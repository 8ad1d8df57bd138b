import { defineConfig } from 'vite';

// Vite 8 transforms TSX with its own oxc transformer (React's automatic JSX runtime), so the
// console needs no @vitejs/plugin-react (whose Babel peer dependencies clash with Stryker's).
// scripts/build.mjs passes the output directory (dist/web).
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic' } },
  build: { target: 'es2022', sourcemap: false, emptyOutDir: true, chunkSizeWarningLimit: 600 },
});
