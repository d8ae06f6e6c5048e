from jaxaudio.cli import main

raise SystemExit(main())
