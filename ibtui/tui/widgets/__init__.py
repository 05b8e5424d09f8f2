"""The app's widgets: the settings form, the plots and the status bar."""
