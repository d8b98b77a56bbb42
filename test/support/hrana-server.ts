// The Hrana test server lives in scripts/ (npm run dev uses it too); tests may import it from here.
export * from '../../scripts/hrana-server.js';
