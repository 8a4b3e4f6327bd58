import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The canvas is built into web/dist and served by `nodeai serve` at /.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  logLevel: 'warn',
});
