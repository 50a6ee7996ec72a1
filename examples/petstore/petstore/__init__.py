"""The petstore example: one portable app, deployed unchanged to four clouds."""
